import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { WebSocket } from 'ws';

import { parseCursor, type StreamCursor } from '../../chat/cursor.js';
import type { EventSink, ChatStreams } from '../../chat/stream.js';
import type { Chat } from '../../store/types.js';
import { ErrInvalidRequest, ErrUpgradeRequired } from '../errors.js';
import { frameWriter, type FrameWriter } from '../frames.js';
import type { HttpMetrics } from '../metrics.js';
import { errorResponses } from '../schemas.js';
import { ChatParams, loadChat } from './chats.js';

export interface StreamRouteOptions {
  streams: ChatStreams;
  getChat: (id: string) => Promise<Chat | undefined>;
  /** Bytes a client may leave unread before it is cut off. */
  backlogBytes: number;
  metrics: HttpMetrics;
  /** A ping every this often; a peer that has not answered the previous one is terminated. Default 30 s. */
  pingIntervalMs?: number;
  /** Told of each chat stream's socket: it listens for the console's presence messages itself. */
  presence?: { attach(socket: WebSocket, chatId: string, userId: string): void };
}

const defaultPingIntervalMs = 30_000;
/** The streams only send; what a client sends (presence, at most) is small and rare. Counted per ping interval. */
export const maxClientMessagesPerInterval = 100;
/** RFC 6455 1008: policy violation. */
const closePolicy = 1008;

/** Both WebSocket routes answer a plain GET with 426 (and errors before it with their own 4xx). */
const upgradeRequired = () => {
  throw new ErrUpgradeRequired();
};

/** `cursor` as every event carries it; `after_id` alone for a client that holds no parts. */
const StreamQuery = Type.Object(
  {
    after_id: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}(\\.[0-9]{1,15}\\.[0-9]{1,15})?$', description: 'The `cursor` of the last event received.' })),
  },
  { additionalProperties: false },
);

function streamCursor(q: { after_id?: number; cursor?: string }): StreamCursor {
  if (q.cursor !== undefined && q.after_id !== undefined) throw new ErrInvalidRequest({ detail: 'send cursor or after_id, not both' });
  if (q.cursor === undefined) return { afterId: q.after_id ?? 0, generation: 0, seq: 0 };
  const c = parseCursor(q.cursor);
  if (!c) throw new ErrInvalidRequest({ detail: 'cursor is not one this server wrote' });
  return c;
}

/**
 * Ties the subscription's life to the socket's: pings notice dead peers (a peer that has not answered the last ping
 * is terminated) and keep proxies from idling the socket out; a client sending more than it ever should is closed;
 * close cancels the subscription and releases the writer.
 */
function bindSocket(socket: WebSocket, writer: FrameWriter, pingIntervalMs: number, open: (signal: AbortSignal) => Promise<() => Promise<void>>, onError: (err: unknown) => void): void {
  const closed = new AbortController();
  let answered = true;
  let received = 0;
  socket.on('pong', () => (answered = true));
  socket.on('message', () => {
    if (++received > maxClientMessagesPerInterval) socket.close(closePolicy, 'too many client messages');
  });
  const ping = setInterval(() => {
    if (!answered) return socket.terminate();
    answered = false;
    received = 0;
    socket.ping();
  }, pingIntervalMs).unref();
  let cancel: (() => Promise<void>) | undefined;
  socket.on('close', () => {
    clearInterval(ping);
    writer.close();
    closed.abort();
    void cancel?.();
  });
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
  const pingIntervalMs = opts.pingIntervalMs ?? defaultPingIntervalMs;
  const writerFor = (socket: WebSocket, onCut: () => void) =>
    frameWriter(socket, {
      backlogBytes: opts.backlogBytes,
      onCut: () => {
        opts.metrics.streamClientsCut.inc();
        onCut();
      },
      onFrame: (bytes) => {
        opts.metrics.streamFrames.inc();
        opts.metrics.streamFrameBytes.inc(bytes);
      },
    });
  return async (plain) => {
    const app = plain.withTypeProvider<TypeBoxTypeProvider>();

    app.route({
      method: 'GET',
      url: '/chats/watch',
      schema: { response: errorResponses },
      handler: upgradeRequired,
      wsHandler: (socket, req) => {
        let cancel: (() => Promise<void>) | undefined;
        const writer = writerFor(socket, () => void cancel?.());
        bindSocket(
          socket,
          writer,
          pingIntervalMs,
          async () => {
            cancel = await opts.streams.watchOwner(req.user.id, (events) => writer.send(events));
            // An empty frame says "listening": a client re-reads its list after it, so no change falls in between.
            socket.send('[]');
            return cancel;
          },
          (err) => req.log.warn({ err }, 'chat watch: could not open'),
        );
      },
    });

    app.route({
      method: 'GET',
      url: '/chats/:chat/stream',
      schema: {
        params: ChatParams,
        querystring: StreamQuery,
        response: errorResponses,
      },
      preHandler: [async (req) => void streamCursor(req.query), loadChat(opts.getChat)],
      handler: upgradeRequired,
      wsHandler: (socket, req) => {
        const { chat } = req;
        const cursor = streamCursor(req.query);
        opts.presence?.attach(socket, chat.id, req.user.id);
        let cancel: (() => Promise<void>) | undefined;
        const writer = writerFor(socket, () => void cancel?.());
        const sink: EventSink = Object.assign((events: Parameters<EventSink>[0]) => writer.send(events), { drained: () => writer.drained() });
        bindSocket(
          socket,
          writer,
          pingIntervalMs,
          async (signal) => {
            // The middleware's row goes in: no second authorization read (DESIGN §4 step 1).
            const sub = await opts.streams.subscribeAuthorized({ signal }, chat, cursor, sink);
            cancel = () => sub.cancel();
            return cancel;
          },
          (err) => req.log.warn({ err, chatId: chat.id }, 'chat stream: could not open'),
        );
      },
    });
  };
}
