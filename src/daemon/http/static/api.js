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

/** Calls the API; rejects with an ApiError that carries the server's `{message}`. */
export async function api(method, path, body, token = getToken()) {
  const headers = {};
  if (token) headers['coder-session-token'] = token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'The server cannot be reached.');
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
 * Reconnects back off from 1 s to 15 s. Returns `stop()`.
 */
export function keepOpen({ prepare, onEvents, onState }) {
  let stopped = false;
  let socket;
  let timer;
  let delay = 1000;
  const retry = () => {
    onState('reconnecting');
    timer = setTimeout(connect, delay);
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
  return () => {
    stopped = true;
    clearTimeout(timer);
    socket?.close();
  };
}
