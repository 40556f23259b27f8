import type { Registry } from 'prom-client';

import type { Logger } from '../observability/logger.js';
import { isConnectionError } from '../postgres/errors.js';
import type { Queryable } from '../postgres/pool.js';
import { publishNotify } from '../store/pubsub.js';
import { BatchingPublisher, createPgBatchSender, type BatchSender, type BatchingOptions } from './batching.js';
import { startLatencyProbe, type LatencyProbe } from './latency.js';
import { pgListenerConnector, type ConnectionConfigSource, type ConnectListener, type ListenerConnection, type ListenerEvents } from './listener.js';
import { countPublish, createPubsubMetrics } from './metrics.js';
import { ErrPubsubClosed, validateChannel, validatePayload, type Listener, type Pubsub } from './pubsub.js';
import { withoutErr } from './queue.js';
import { SubscriptionRegistry, type Channel } from './subscriptions.js';

export interface PostgresPubsubOptions {
  connectionConfig: ConnectionConfigSource;
  /** Publishes go through here, one by one, when a batched flush fails. */
  pool: Queryable;
  logger: Logger;
  /** Where the `coder_pubsub_*` metrics are registered (the daemon's, for /metrics). */
  registry?: Registry;
  /** Replaces the LISTEN connection (tests). */
  connectListener?: ConnectListener;
  /** Replaces the batch sender connection (tests). */
  sender?: BatchSender;
  batching?: BatchingOptions;
  /** Reconnect backoff: starts here and doubles, with jitter. Default 1 s. */
  reconnectInitialMs?: number;
  /** Default 60 s. */
  reconnectMaxMs?: number;
  /** Background latency probe period; 0 turns it off. Default 10 s. */
  latencyIntervalMs?: number;
  /** Told when the LISTEN connection is lost (with why) and when it is back with every channel listened. */
  onConnectionChange?: (connected: boolean, err?: Error) => void;
}

export interface PostgresPubsub extends Pubsub {
  /** True while the LISTEN connection is up with every active channel listened. */
  readonly connected: boolean;
}

/**
 * PostgreSQL LISTEN/NOTIFY pubsub: the shared subscription registry over one LISTEN connection, and the batching
 * sender for NOTIFY. A channel's handle is the connection generation it was listened on.
 */
export async function createPostgresPubsub(opts: PostgresPubsubOptions): Promise<PostgresPubsub> {
  const { logger } = opts;
  const metrics = createPubsubMetrics(opts.registry);
  const connectListener = opts.connectListener ?? pgListenerConnector(opts.connectionConfig);
  const initialBackoff = opts.reconnectInitialMs ?? 1000;
  const maxBackoff = opts.reconnectMaxMs ?? 60_000;

  let conn: ListenerConnection | undefined;
  /** Bumped for every connection, so events from a replaced one are ignored. */
  let generation = 0;
  let connected = false;
  let closed = false;
  let closing: Promise<void> | undefined;
  let reconnecting: Promise<void> | undefined;
  let wakeReconnect: (() => void) | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;

  const setConnected = (value: boolean, err?: Error) => {
    if (connected === value) return;
    connected = value;
    metrics.connected.set(value ? 1 : 0);
    opts.onConnectionChange?.(value, err);
  };

  /** Brings the server's LISTEN state for one channel in line with its subscriptions. */
  async function sync(ch: Channel<number>): Promise<void> {
    const c = conn;
    const gen = generation;
    if (!c) return;
    const want = ch.queues.size > 0;
    try {
      if (want && ch.handle === undefined) {
        await c.listen(ch.event);
        if (gen === generation) ch.handle = gen;
      } else if (!want && ch.handle !== undefined) {
        await c.unlisten(ch.event);
        ch.handle = undefined;
      }
    } catch (err) {
      // A lost connection is the reconnect's business: it re-LISTENs every active channel. The statement can
      // fail (57P01 on a terminated backend) before the connection reports itself lost. Anything else is a
      // refusal by the server on a live connection, and the caller's.
      if (gen === generation && !isConnectionError(err)) throw err;
      ch.handle = undefined;
    }
  }

  const subscriptions = new SubscriptionRegistry<number>({ logger, metrics, isClosed: () => closing !== undefined, sync });

  function eventsFor(gen: number): ListenerEvents {
    return {
      notification: (event, text) => {
        if (gen === generation) subscriptions.receive(event, Buffer.from(text, 'utf8'));
      },
      lost: (err) => onLost(gen, err),
    };
  }

  function onLost(gen: number, err: Error): void {
    if (closed || gen !== generation) return;
    const old = conn;
    conn = undefined;
    generation++;
    for (const ch of subscriptions.all()) ch.handle = undefined;
    metrics.disconnections.inc();
    logger.warn({ err }, 'pubsub lost its LISTEN connection; reconnecting');
    setConnected(false, err);
    void old?.close();
    reconnecting ??= reconnectLoop().finally(() => (reconnecting = undefined));
  }

  async function connect(): Promise<boolean> {
    const gen = ++generation;
    const c = await connectListener(eventsFor(gen));
    if (gen !== generation || closed) {
      await c.close();
      return false;
    }
    conn = c;
    return true;
  }

  async function reconnectLoop(): Promise<void> {
    let delay = initialBackoff;
    while (!closed) {
      await new Promise<void>((resolve) => {
        wakeReconnect = resolve;
        reconnectTimer = setTimeout(resolve, delay * (0.8 + Math.random() * 0.4));
      });
      clearTimeout(reconnectTimer);
      if (closed) return;
      delay = Math.min(delay * 2, maxBackoff);
      try {
        if (!(await connect())) continue;
      } catch (err) {
        logger.warn({ err, retryInMs: delay }, 'pubsub cannot reconnect its LISTEN connection');
        continue;
      }
      const gen = generation;
      subscriptions.hold();
      for (const ch of subscriptions.all()) {
        await subscriptions.resync(ch).catch((err: unknown) => logger.error({ err, event: ch.event }, 'pubsub cannot re-LISTEN'));
      }
      if (gen !== generation || closed) continue;
      subscriptions.release();
      setConnected(true);
      logger.info({ channels: subscriptions.all().length }, 'pubsub reconnected');
      return;
    }
  }

  const sender = opts.sender ?? createPgBatchSender(opts.connectionConfig, logger);
  const batcher = new BatchingPublisher(sender, (n) => publishNotify(opts.pool, n.event, n.payload), logger, metrics, opts.batching);

  metrics.connected.set(0);
  await connect();
  if (conn) setConnected(true);

  let probe: LatencyProbe | undefined;

  const pubsub: PostgresPubsub = {
    get connected() {
      return connected;
    },
    publish: (event, payload) =>
      countPublish(metrics, async () => {
        if (closed) throw new ErrPubsubClosed();
        validateChannel(event);
        const buf = validatePayload(payload);
        await batcher.publish(event, typeof payload === 'string' ? payload : buf.toString('utf8'), buf.length);
        return buf.length;
      }),
    subscribe: (event: string, listener: Listener) => subscriptions.subscribe(event, withoutErr(listener)),
    subscribeWithErr: (event, listener) => subscriptions.subscribe(event, listener),
    close() {
      return (closing ??= (async () => {
        await probe?.stop();
        // Queued publishes still go out; subscriptions stay until then so a local subscriber sees them too.
        const dropped = await batcher.close();
        if (dropped > 0) logger.warn({ dropped }, 'pubsub closed with unsent messages');
        closed = true;
        generation++;
        clearTimeout(reconnectTimer);
        wakeReconnect?.();
        await reconnecting;
        subscriptions.close();
        connected = false;
        metrics.connected.set(0);
        const c = conn;
        conn = undefined;
        await c?.close();
      })());
    },
  };

  if ((opts.latencyIntervalMs ?? 10_000) > 0) {
    probe = startLatencyProbe({ pubsub, metrics, logger, intervalMs: opts.latencyIntervalMs });
  }
  return pubsub;
}

/** One validated NOTIFY through a pool, without a pubsub of its own (the `pubsub publish` command). */
export async function publishOnce(db: Queryable, event: string, payload: Buffer | string): Promise<void> {
  validateChannel(event);
  const buf = validatePayload(payload);
  await publishNotify(db, event, typeof payload === 'string' ? payload : buf.toString('utf8'));
}
