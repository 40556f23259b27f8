import type { FastifyPluginAsync } from 'fastify';
import type { WebSocket } from 'ws';

import type { ChatStreams, StreamSubscription } from '../../chat/stream.js';
import type { Chat } from '../../store/types.js';
import { requireAuth, type Authenticator } from '../auth.js';
import { chatParams, loadChat } from './chats.js';

export interface StreamRouteOptions {
  authenticate: Authenticator;
  streams: ChatStreams;
  getChat: (id: string) => Promise<Chat | undefined>;
  /** Bytes a client may leave unread before it is cut off. */
  backlogBytes: number;
  /** Told of each chat stream's socket: it listens for the console's presence messages itself. */
  presence?: { attach(socket: WebSocket, chatId: string, userId: string): void };
}

/** Frames hold at most this many events (DESIGN §4). */
export const maxEventsPerFrame = 256;
/** Close code for a client that does not keep up (RFC 6455 1013: try again later). */
export const closeTooSlow = 1013;
const pingIntervalMs = 30_000;

/**
 * Sends events as JSON-array frames, coalescing what arrives in one turn of the event loop (a burst of parts) into
 * one frame: fewer writes for the server and fewer messages for the client. A client that does not read is cut off
 * once its unsent backlog passes the bound, so a stalled reader never grows memory without limit.
 */
export function frameSender(socket: WebSocket, backlogBytes: number, onOverflow: () => void) {
  let pending: unknown[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const events = pending;
    pending = [];
    if (socket.readyState !== socket.OPEN) return;
    for (let i = 0; i < events.length; i += maxEventsPerFrame) socket.send(JSON.stringify(events.slice(i, i + maxEventsPerFrame)));
    if (socket.bufferedAmount > backlogBytes) {
      onOverflow();
      socket.close(closeTooSlow, 'client too slow: stream backlog exceeded');
      // The close frame waits behind the unread backlog; do not wait for a client that is not reading.
      setTimeout(() => socket.terminate(), 2000).unref();
    }
  };
  return (events: unknown[]) => {
    if (socket.readyState !== socket.OPEN) return;
    for (const e of events) pending.push(e);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

/** Ties the subscription's life to the socket's: pings keep proxies from idling it out, close cancels. */
function bindSocket(socket: WebSocket, open: (signal: AbortSignal) => Promise<() => Promise<void>>, onError: (err: unknown) => void): void {
  const closed = new AbortController();
  const ping = setInterval(() => socket.ping(), pingIntervalMs).unref();
  let cancel: (() => Promise<void>) | undefined;
  socket.on('close', () => {
    clearInterval(ping);
    closed.abort();
    void cancel?.();
  });
  socket.on('error', () => socket.terminate());
  open(closed.signal).then(
    (c) => {
      cancel = c;
      if (closed.signal.aborted) void c();
    },
    (err: unknown) => {
      onError(err);
      socket.close(1011, 'could not open the stream');
    },
  );
}

export function streamRoutes(opts: StreamRouteOptions): FastifyPluginAsync {
  return async (app) => {
    app.addHook('onRequest', requireAuth(opts.authenticate));

    app.get('/api/experimental/chats/watch', { websocket: true }, (socket, req) => {
      bindSocket(
        socket,
        async () => {
          const send = frameSender(socket, opts.backlogBytes, () => void cancel());
          const cancel = await opts.streams.watchOwner(req.user.id, send);
          // An empty frame says "listening": a client re-reads its list after it, so no change falls in between.
          socket.send('[]');
          return cancel;
        },
        (err) => req.log.warn({ err }, 'chat watch: could not open'),
      );
    });

    app.get(
      '/api/experimental/chats/:chat/stream',
      {
        websocket: true,
        schema: {
          params: chatParams,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { after_id: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 } },
          },
        },
        preHandler: loadChat(opts.getChat),
      },
      (socket, req) => {
        const { after_id: afterId } = req.query as { after_id: number };
        opts.presence?.attach(socket, req.chat.id, req.user.id);
        bindSocket(
          socket,
          async (signal) => {
            let sub: StreamSubscription | undefined;
            const send = frameSender(socket, opts.backlogBytes, () => void sub?.cancel());
            // The middleware's row goes in: no second authorization read (DESIGN §4 step 1).
            sub = await opts.streams.subscribeAuthorized({ signal }, req.chat, afterId, send);
            return () => sub.cancel();
          },
          (err) => req.log.warn({ err, chatId: req.chat.id }, 'chat stream: could not open'),
        );
      },
    );
  };
}
