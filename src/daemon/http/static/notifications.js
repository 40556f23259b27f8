// The "Enable notifications" / "Disable notifications" button and what it has to say.
import { h } from './dom.js';
import * as push from './push.js';

export function notificationsToggle(serviceWorker) {
  const message = h('p', { className: 'push-message', id: 'push-message', role: 'status' });
  const button = h('button', { type: 'button', className: 'quiet', id: 'notifications' }, 'Enable notifications');
  let subscribed = false;
  const show = (on) => {
    subscribed = on;
    button.textContent = on ? 'Disable notifications' : 'Enable notifications';
  };
  serviceWorker.then(() => push.currentSubscription()).then((s) => show(Boolean(s)), () => show(false));
  button.addEventListener('click', async () => {
    button.disabled = true;
    message.textContent = '';
    message.classList.remove('error');
    try {
      if (subscribed) {
        await push.disable();
        show(false);
        message.textContent = 'Notifications are off.';
      } else {
        await push.enable();
        show(true);
        message.textContent = 'Notifications are on: you hear from a chat when its turn ends.';
      }
    } catch (err) {
      message.classList.add('error');
      message.textContent = err instanceof push.PushError ? err.message : `Something went wrong: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return h('div', { className: 'push' }, button, message);
}
