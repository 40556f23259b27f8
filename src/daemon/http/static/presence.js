// Tells the chat's stream whether its owner is looking at it: the server skips the push after a turn then (the
// service worker shows every push it gets, as Safari requires). "Watching" expires on the server unless refreshed,
// so a tab that freezes or loses its connection stops counting by itself.

/** The server forgets a "watching" after 30 s (src/daemon/webpush/presence.ts); refresh well within. */
const refreshMs = 10_000;

const watching = () => document.visibilityState === 'visible' && document.hasFocus();

/** `send(message)` writes to the stream socket when it is open. Returns `{ resend(), stop() }`. */
export function reportPresence(send) {
  let last;
  let timer;
  const update = () => {
    clearTimeout(timer);
    const now = watching();
    if (now || now !== last) send({ type: 'presence', watching: now });
    last = now;
    if (now) timer = setTimeout(update, refreshMs);
  };
  const events = [
    [document, 'visibilitychange'],
    [window, 'focus'],
    [window, 'blur'],
    [window, 'pagehide'],
  ];
  for (const [target, type] of events) target.addEventListener(type, update);
  return {
    /** After a (re)connect: the new socket has said nothing yet. */
    resend() {
      last = undefined;
      update();
    },
    stop() {
      clearTimeout(timer);
      for (const [target, type] of events) target.removeEventListener(type, update);
    },
  };
}
