// The console's service worker: shows every push it receives, opens the chat a notification is about, and renews
// the push subscription when the browser replaces it. It caches nothing: the console is served by the daemon it
// talks to, so offline there is nothing to show.
//
// Every push is shown, even for a chat open in a focused tab: Safari revokes the permission after pushes that show
// nothing, so the server decides (it skips the push while the owner watches the chat) and this worker never does.

const subscriptionPath = '/api/v2/users/me/webpush/subscription';

self.addEventListener('install', () => self.skipWaiting());
// Take over open console tabs at once, so a notification click can bring one of them to the chat.
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

/** A URL of this origin, or the console's root: a payload never sends the user elsewhere. */
function ownUrl(url) {
  try {
    const resolved = new URL(url, self.location.origin);
    if (resolved.origin === self.location.origin) return resolved.href;
  } catch {
    // fall through to the root
  }
  return new URL('/', self.location.origin).href;
}

/**
 * What to show for a payload: a Declarative Web Push message (`web_push: 8030`, which Safari 18.4+ shows without
 * us), or the `{title, body, icon, data: {url}}` the daemon sent before it.
 */
function notificationOf(payload) {
  if (payload?.web_push === 8030 && payload.notification) {
    const n = payload.notification;
    return { title: n.title, body: n.body, icon: n.icon, tag: n.tag, url: n.navigate };
  }
  return { title: payload?.title, body: payload?.body, icon: payload?.icon, tag: undefined, url: payload?.data?.url };
}

async function showPush(data) {
  let payload = {};
  try {
    payload = data ? data.json() : {};
  } catch {
    payload = { body: data.text() };
  }
  const n = notificationOf(payload);
  const url = ownUrl(n.url ?? '/');
  await self.registration.showNotification(n.title || 'coder-lite', {
    body: n.body ?? '',
    icon: n.icon ? ownUrl(n.icon) : '/icon.png',
    data: { url },
    // The chat's id: a newer turn's notification replaces the older, on every device.
    tag: n.tag || url,
  });
}

async function openChat(url) {
  // Controlled tabs only: those are the ones navigate() may move.
  const windows = await self.clients.matchAll({ type: 'window' });
  const target = windows.find((w) => w.url === url) ?? windows[0];
  if (!target) return self.clients.openWindow(url);
  const shown = target.url === url ? target : await target.navigate(url);
  return (shown ?? target).focus();
}

self.addEventListener('push', (event) => event.waitUntil(showPush(event.data)));

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(openChat(ownUrl(event.notification.data?.url ?? '/')));
});

// The API token, for renewing the subscription with no tab open: the console hands it over (push.js shareToken);
// a worker cannot read the page's localStorage.
function store(mode, use) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open('coder-lite', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('kv');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const tx = open.result.transaction('kv', mode);
      const request = use(tx.objectStore('kv'));
      tx.oncomplete = () => {
        open.result.close();
        resolve(request.result);
      };
      tx.onerror = () => reject(tx.error);
    };
  });
}

self.addEventListener('message', (event) => {
  if (event.data?.type !== 'token') return;
  const { token } = event.data;
  event.waitUntil(store('readwrite', (kv) => (token ? kv.put(token, 'token') : kv.delete('token'))));
});

function keyBytes(base64urlKey) {
  const binary = atob(base64urlKey.replaceAll('-', '+').replaceAll('_', '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * The browser replaced (or dropped) the subscription: subscribe again where it offers no new one, register the new
 * one with the daemon, and remove the old when it is known. Chrome never fires this; the daemon's age and failure
 * clean-up covers it there.
 */
async function renewSubscription(oldSubscription, newSubscription) {
  const token = await store('readonly', (kv) => kv.get('token'));
  if (!token) return;
  const headers = { 'content-type': 'application/json', 'coder-session-token': token };
  let subscription = newSubscription;
  if (!subscription) {
    // The daemon's current key: the old subscription's may predate a `vapid regenerate`.
    const info = await (await fetch('/api/v2/buildinfo')).json();
    if (!info?.webpush_public_key) return;
    subscription = await self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(info.webpush_public_key) });
  }
  const { keys } = subscription.toJSON();
  const res = await fetch(subscriptionPath, {
    method: 'POST',
    headers,
    body: JSON.stringify({ endpoint: subscription.endpoint, auth_key: keys.auth, p256dh_key: keys.p256dh }),
  });
  if (!res.ok) throw new Error(`the daemon did not accept the renewed subscription: ${res.status}`);
  if (oldSubscription && oldSubscription.endpoint !== subscription.endpoint) {
    await fetch(subscriptionPath, { method: 'DELETE', headers, body: JSON.stringify({ endpoint: oldSubscription.endpoint }) });
  }
}

self.addEventListener('pushsubscriptionchange', (event) => event.waitUntil(renewSubscription(event.oldSubscription, event.newSubscription)));
