// The sign-in view: an API token, checked against the API before it is kept.
import { api, setToken } from './api.js';
import { h } from './dom.js';

export function signInView(message, onSignedIn) {
  const input = h('input', { type: 'password', name: 'token', id: 'token', autocomplete: 'off', required: true, spellcheck: false });
  const error = h('p', { className: 'error', role: 'alert' }, message ?? '');
  const form = h(
    'form',
    { className: 'sign-in card', id: 'sign-in' },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Paste an API token. ', h('code', {}, 'coder-lite users create NAME'), ' prints one.'),
    h('label', { htmlFor: 'token' }, 'API token'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
    error,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    error.textContent = '';
    try {
      const user = await api('GET', '/api/v2/users/me', undefined, { token });
      setToken(token);
      onSignedIn(user);
    } catch (err) {
      error.textContent = err.status === 401 ? 'That token was not accepted.' : err.message;
    }
  });
  return { element: form, focus: () => input.focus() };
}
