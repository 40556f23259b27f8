// "Enable notifications": subscribes this browser to Web Push and hands the subscription to the daemon.
import { api } from './api.js';

const subscriptionPath = '/api/v2/users/me/webpush/subscription';

/** A reason to show the user as is. */
export class PushError extends Error {}

/** Why push cannot work in this page, or undefined when it can. */
function unsupported() {
  if (!window.isSecureContext) {
    return 'Notifications need a secure page: open the console over https, or on localhost.';
  }
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) {
    return 'This browser does not support push notifications.';
  }
  return undefined;
}

/** Registers the service worker that shows pushes; undefined where there is none to register. */
export async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return undefined;
  return navigator.serviceWorker.register('/sw.js', { scope: '/', updateViaCache: 'none' });
}

async function pushManager() {
  const reason = unsupported();
  if (reason) throw new PushError(reason);
  const registration = await navigator.serviceWorker.getRegistration('/');
  if (!registration) throw new PushError('The service worker that shows notifications is not installed: reload the page.');
  if (!registration.pushManager) throw new PushError('This browser does not support push notifications.');
  // subscribe() needs an active worker; a fresh registration may still be installing.
  await navigator.serviceWorker.ready;
  return registration.pushManager;
}

/** The browser's current subscription, or null (also where push is unsupported). */
export async function currentSubscription() {
  if (unsupported()) return null;
  const registration = await navigator.serviceWorker.getRegistration('/');
  return (await registration?.pushManager?.getSubscription()) ?? null;
}

const base64url = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer))).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');

function keyBytes(base64urlKey) {
  const binary = atob(base64urlKey.replaceAll('-', '+').replaceAll('_', '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * Hands the API token to the service worker (null forgets it): when the browser replaces the push subscription
 * (`pushsubscriptionchange`), the worker registers the new one itself, with no console tab open.
 */
export async function shareToken(token) {
  if (!('serviceWorker' in navigator)) return;
  const registration = await navigator.serviceWorker.ready;
  registration.active?.postMessage({ type: 'token', token });
}

/** Subscribes and registers the subscription with the daemon; throws a PushError that says what went wrong. */
export async function enable() {
  const manager = await pushManager();
  const info = await api('GET', '/api/v2/buildinfo');
  if (!info?.webpush_public_key) throw new PushError('This server does not send push notifications.');
  const permission = await Notification.requestPermission();
  if (permission === 'denied') {
    throw new PushError('Notifications are blocked for this site. Allow them in the browser’s site settings, then try again.');
  }
  if (permission !== 'granted') throw new PushError('Notifications were not allowed.');

  let subscription = await manager.getSubscription();
  // A subscription made for an older server key (after `coder-lite vapid regenerate`) cannot be reused.
  const oldKey = subscription?.options?.applicationServerKey;
  if (subscription && oldKey && base64url(oldKey) !== info.webpush_public_key.replace(/=+$/, '')) {
    await subscription.unsubscribe();
    subscription = null;
  }
  if (!subscription) {
    try {
      subscription = await manager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(info.webpush_public_key) });
    } catch (err) {
      throw new PushError(`This browser could not subscribe to push notifications: ${err.message || err.name}. Its push service may be out of reach.`);
    }
  }
  const { keys } = subscription.toJSON();
  try {
    await api('POST', subscriptionPath, { endpoint: subscription.endpoint, auth_key: keys.auth, p256dh_key: keys.p256dh });
  } catch (err) {
    await subscription.unsubscribe().catch(() => {});
    throw new PushError(`The server did not accept the subscription: ${err.message}`);
  }
}

/** Removes the subscription from the daemon, then from the browser. */
export async function disable() {
  const subscription = await currentSubscription();
  if (!subscription) return;
  try {
    await api('DELETE', subscriptionPath, { endpoint: subscription.endpoint });
  } catch (err) {
    // 404: the daemon already forgot it (e.g. pruned after a failed push); unsubscribing is still right.
    if (err.status !== 404) throw new PushError(`The server could not remove the subscription: ${err.message}`);
  }
  await subscription.unsubscribe();
}
