// The daemon's API as the console uses it: the API token from the browser's storage on every call.

const tokenKey = 'coder-lite.token';
/** Browsers cannot set headers on a WebSocket: the token travels as a second subprotocol next to this one. */
const wsProtocol = 'coder-lite';

export const getToken = () => localStorage.getItem(tokenKey);
export const setToken = (token) => localStorage.setItem(tokenKey, token);
export const clearToken = () => localStorage.removeItem(tokenKey);

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let unauthorized = () => {};
/** Called when the stored token stops working (revoked, or the database was reset). */
export const onUnauthorized = (fn) => (unauthorized = fn);

/** A v4 UUID; `crypto.randomUUID` exists only in secure contexts, and the console also runs over plain http. */
function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Waits before retry `attempt` (0-based): 250 ms, 500 ms, 1 s, or what a 503's Retry-After asks, up to 5 s. */
const retryDelays = [250, 500, 1000];
const pause = (attempt, retryAfter) => {
  const asked = Number(retryAfter) * 1000;
  return new Promise((resolve) => setTimeout(resolve, asked > 0 ? Math.min(asked, 5000) : retryDelays[attempt]));
};

/**
 * Calls the API; rejects with an ApiError that carries the server's `{message}`. With `idempotent`, the call is a
 * send that must happen once: it carries an `Idempotency-Key` (one per logical send, the same on each retry), so it
 * can be retried on a network error or a 503 without creating a second chat or message.
 */
export async function api(method, path, body, { token = getToken(), idempotent = false } = {}) {
  const headers = {};
  if (token) headers['coder-session-token'] = token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (idempotent) headers['idempotency-key'] = uuid();
  const attempts = idempotent ? retryDelays.length + 1 : 1;
  let res;
  for (let attempt = 0; ; attempt++) {
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      if (attempt + 1 < attempts) {
        await pause(attempt);
        continue;
      }
      throw new ApiError(0, 'The server cannot be reached.');
    }
    if (res.status !== 503 || attempt + 1 >= attempts) break;
    await pause(attempt, res.headers.get('retry-after'));
  }
  const text = await res.text();
  let data;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    if (res.status === 401 && token === getToken()) unauthorized();
    throw new ApiError(res.status, data?.message ?? `${res.status} ${res.statusText}`);
  }
  return data;
}

/**
 * Keeps a WebSocket of the API open. `prepare()` runs before every (re)connect and returns the path to open, so
 * the caller can re-read what it may have missed and pass its cursor; a 401 or 404 from it ends the attempts.
 * Reconnects back off from 1 s to 15 s, each wait drawn from its upper half so that the consoles a restart cut off
 * do not all come back in the same instant (a daemon admits new sockets at a bounded rate). Returns `stop()` and
 * `send(message)`, which writes JSON to the socket while it is open and drops it otherwise (`onState('live')` says
 * when to say it again).
 */
export function keepOpen({ prepare, onEvents, onState }) {
  let stopped = false;
  let socket;
  let timer;
  let delay = 1000;
  const retry = () => {
    onState('reconnecting');
    timer = setTimeout(connect, delay * (0.5 + Math.random() / 2));
    delay = Math.min(delay * 2, 15_000);
  };
  const connect = async () => {
    let path;
    try {
      path = await prepare();
    } catch (err) {
      if (stopped) return;
      if (err.status === 401 || err.status === 404) return onState('failed', err);
      return retry();
    }
    if (stopped) return;
    const url = new URL(path, location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(url, [wsProtocol, `${wsProtocol}.token.${getToken()}`]);
    socket.onopen = () => {
      delay = 1000;
      onState('live');
    };
    socket.onmessage = (msg) => {
      let events;
      try {
        events = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (Array.isArray(events)) onEvents(events);
    };
    socket.onclose = () => {
      socket = undefined;
      if (!stopped) retry();
    };
  };
  connect();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    },
    send(message) {
      if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    },
  };
}
