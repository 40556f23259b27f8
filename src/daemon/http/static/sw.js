// The console's service worker: shows the daemon's pushes and opens the chat a notification is about.
// It caches nothing: the console is served by the daemon it talks to, so offline there is nothing to show.

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

async function showPush(data) {
  let payload = {};
  try {
    payload = data ? data.json() : {};
  } catch {
    payload = { body: data.text() };
  }
  const url = ownUrl(payload.data?.url ?? '/');
  // Someone looking at this chat already sees the reply arrive: a notification would only repeat it.
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const watching = windows.some((w) => w.focused && w.visibilityState === 'visible' && new URL(w.url).pathname === new URL(url).pathname);
  if (watching) return;
  await self.registration.showNotification(payload.title || 'coder-lite', {
    body: payload.body ?? '',
    icon: payload.icon || '/icon.png',
    data: { ...payload.data, url },
    // One notification per chat: the newest turn's replaces the previous one.
    tag: url,
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
