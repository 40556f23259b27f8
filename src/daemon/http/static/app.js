// The web console: sign in with an API token, the chat list (chatList.js) and one chat (chatView.js) side by side,
// push notifications (push.js). Plain DOM and ES modules: no build step, nothing to download.
import { api, clearToken, getToken, onUnauthorized } from './api.js';
import { chatList } from './chatList.js';
import { chatView } from './chatView.js';
import { h, navigate, onNavigate } from './dom.js';
import * as push from './push.js';
import { signInView } from './signIn.js';

const main = document.getElementById('main');
const who = document.getElementById('who');
const signOutButton = document.getElementById('sign-out');

let session; // { show(), stop() } while signed in
const serviceWorker = push.registerServiceWorker().catch(() => undefined);

// Internal links change the view without a reload.
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-link]');
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(link.getAttribute('href'));
});
onNavigate(() => session?.show());
addEventListener('popstate', () => session?.show());
signOutButton.addEventListener('click', () => signOut());
onUnauthorized(() => signOut('The API token is no longer accepted: sign in again.'));

function chatIdFromPath() {
  const m = /^\/chats\/([^/]+)\/?$/.exec(location.pathname);
  return m ? decodeURIComponent(m[1]) : null;
}

function signOut(message) {
  clearToken();
  void serviceWorker.then(() => push.shareToken(null));
  session?.stop();
  session = undefined;
  showSignIn(message);
}

function showSignIn(message) {
  who.textContent = '';
  signOutButton.hidden = true;
  document.body.classList.remove('in-chat');
  const view = signInView(message, start);
  main.replaceChildren(view.element);
  view.focus();
}

function start(user) {
  who.textContent = user.username;
  signOutButton.hidden = false;
  // The service worker renews the push subscription when the browser replaces it, with no tab open.
  void serviceWorker.then(() => push.shareToken(getToken()));
  const list = chatList(serviceWorker);
  const chatPane = h('section', { className: 'chat-pane', id: 'chat-pane', 'aria-live': 'polite' });
  main.replaceChildren(h('div', { className: 'layout' }, list.element, chatPane));
  let chat;
  session = {
    show() {
      chat?.stop();
      const id = chatIdFromPath();
      document.body.classList.toggle('in-chat', id !== null);
      list.select(id);
      chat = id ? chatView(id) : undefined;
      if (!chat) document.title = 'coder-lite';
      chatPane.replaceChildren(chat ? chat.element : h('p', { className: 'placeholder' }, 'Pick a chat, or start one.'));
    },
    stop() {
      chat?.stop();
      list.stop();
    },
  };
  session.show();
}

if (getToken()) {
  // A 401 signs out through onUnauthorized; anything else keeps the token for the next try.
  api('GET', '/api/v2/users/me').then(start, (err) => err.status !== 401 && showSignIn(err.message));
} else {
  showSignIn();
}
