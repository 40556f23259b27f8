import pg from 'pg';
import type { Registry } from 'prom-client';

import type { Logger } from '../observability/logger.js';
import type { Queryable } from '../postgres/pool.js';
import { listen, publishNotify, unlisten } from '../store/pubsub.js';
import { BatchingPublisher, createPgBatchSender, type BatchSender, type BatchingOptions } from './batching.js';
import { startLatencyProbe, type LatencyProbe } from './latency.js';
import { createPubsubMetrics, type PubsubMetrics } from './metrics.js';
import {
  colossalPayloadBytes,
  ErrPubsubClosed,
  validateChannel,
  validatePayload,
  type Cancel,
  type Listener,
  type ListenerWithErr,
  type Pubsub,
} from './pubsub.js';
import { MessageQueue, withoutErr } from './queue.js';

/** The LISTEN side of one connection. A fake stands in for it in race tests. */
export interface ListenerConnection {
  listen(event: string): Promise<void>;
  unlisten(event: string): Promise<void>;
  close(): Promise<void>;
}

export interface ListenerEvents {
  notification(event: string, payload: string): void;
  /** The connection is gone (error or end); called at most once. */
  lost(err: Error): void;
}

export type ConnectListener = (events: ListenerEvents) => Promise<ListenerConnection>;

/** One dedicated `pg.Client` for LISTEN: a pooled client would be handed to someone else and miss notifications. */
export function pgListenerConnector(config: pg.ClientConfig): ConnectListener {
  return async (events) => {
    // Keepalive notices a dead peer that never sends a FIN; the connect timeout keeps a reconnect from hanging.
    const client = new pg.Client({ ...config, application_name: 'coder-lite pubsub', keepAlive: true, connectionTimeoutMillis: 10_000 });
    let gone = false;
    const lost = (err: Error) => {
      if (gone) return;
      gone = true;
      events.lost(err);
    };
    client.on('error', lost);
    client.on('end', () => lost(new Error('pubsub: LISTEN connection ended')));
    client.on('notification', (n) => events.notification(n.channel, n.payload ?? ''));
    try {
      await client.connect();
    } catch (err) {
      gone = true;
      throw err;
    }
    // One statement at a time: channels sync independently, and pg deprecates overlapping queries on one client.
    let tail: Promise<unknown> = Promise.resolve();
    const serial = (fn: () => Promise<void>): Promise<void> => {
      const run = tail.then(fn);
      tail = run.catch(() => undefined);
      return run;
    };
    return {
      listen: (event) => serial(() => listen(client, event)),
      unlisten: (event) => serial(() => unlisten(client, event)),
      async close() {
        gone = true;
        await client.end().catch(() => undefined);
      },
    };
  };
}

export interface PostgresPubsubOptions {
  connectionConfig: pg.ClientConfig;
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
}

export interface PubsubStats {
  connected: boolean;
  subscribers: number;
  events: number;
  publishes: number;
  flushes: number;
  flushedMessages: number;
  flushFailures: number;
  fallbacks: number;
  received: number;
  dropSignals: number;
  disconnections: number;
}

export interface PostgresPubsub extends Pubsub {
  /** True while the LISTEN connection is up with every active channel listened. */
  readonly connected: boolean;
  stats(): PubsubStats;
}

/** A channel's subscriptions and whether the LISTEN connection is (believed to be) listening on it. */
interface Channel {
  readonly event: string;
  readonly queues: Set<MessageQueue>;
  listening: boolean;
  /** LISTEN/UNLISTEN for one channel run one after another, in call order (Coder #15312). */
  tail: Promise<void>;
}

/**
 * PostgreSQL LISTEN/NOTIFY pubsub. Notifications are dispatched synchronously into per-subscription queues that never
 * block, so no LISTEN/UNLISTEN reply can wait on a listener, and no dispatch waits on a LISTEN (Coder #11950).
 */
export async function createPostgresPubsub(opts: PostgresPubsubOptions): Promise<PostgresPubsub> {
  const { logger } = opts;
  const metrics: PubsubMetrics = createPubsubMetrics(opts.registry);
  const connectListener = opts.connectListener ?? pgListenerConnector(opts.connectionConfig);
  const initialBackoff = opts.reconnectInitialMs ?? 1000;
  const maxBackoff = opts.reconnectMaxMs ?? 60_000;
  const channels = new Map<string, Channel>();
  const counts = { publishes: 0, received: 0, dropSignals: 0, disconnections: 0, subscribers: 0 };

  let conn: ListenerConnection | undefined;
  /** Bumped for every connection, so events from a replaced one are ignored. */
  let generation = 0;
  let connected = false;
  let closed = false;
  let closing: Promise<void> | undefined;
  let reconnecting: Promise<void> | undefined;
  let wakeReconnect: (() => void) | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  /** While re-listening after a reconnect, notifications wait here so the drop signal goes first. */
  let held: Array<[string, Buffer]> | undefined;

  metrics.connected.set(0);
  const onDropSignal = () => {
    counts.dropSignals++;
    metrics.droppedSignals.inc();
  };

  function dispatch(event: string, payload: Buffer): void {
    const ch = channels.get(event);
    if (!ch) return;
    for (const q of ch.queues) q.enqueue(payload);
  }

  function onNotification(event: string, text: string): void {
    const payload = Buffer.from(text, 'utf8');
    counts.received++;
    metrics.receivedBytes.inc(payload.length);
    metrics.messages.inc({ size: payload.length >= colossalPayloadBytes ? 'colossal' : 'normal' });
    if (held) held.push([event, payload]);
    else dispatch(event, payload);
  }

  function eventsFor(gen: number): ListenerEvents {
    return {
      notification: (event, text) => {
        if (gen === generation) onNotification(event, text);
      },
      lost: (err) => onLost(gen, err),
    };
  }

  function onLost(gen: number, err: Error): void {
    if (closed || gen !== generation) return;
    const old = conn;
    conn = undefined;
    generation++;
    for (const ch of channels.values()) ch.listening = false;
    if (connected) {
      connected = false;
      metrics.connected.set(0);
    }
    counts.disconnections++;
    metrics.disconnections.inc();
    logger.warn({ err }, 'pubsub lost its LISTEN connection; reconnecting');
    void old?.close();
    reconnecting ??= reconnectLoop().finally(() => (reconnecting = undefined));
  }

  /** Brings the server's LISTEN state for one channel in line with its subscriptions. Runs on the channel's chain. */
  async function sync(ch: Channel): Promise<void> {
    const c = conn;
    const gen = generation;
    if (c) {
      const want = ch.queues.size > 0;
      try {
        if (want && !ch.listening) {
          await c.listen(ch.event);
          if (gen === generation) ch.listening = true;
        } else if (!want && ch.listening) {
          await c.unlisten(ch.event);
          ch.listening = false;
        }
      } catch (err) {
        // A lost connection is the reconnect's business: it re-LISTENs every active channel. A refusal by the
        // server (a DatabaseError on a live connection) is the caller's.
        if (err instanceof pg.DatabaseError && gen === generation) throw err;
        ch.listening = false;
      }
    }
    // Forget the channel only if nobody subscribed while the UNLISTEN was in flight.
    if (ch.queues.size === 0 && !ch.listening && channels.get(ch.event) === ch) {
      channels.delete(ch.event);
      metrics.currentEvents.set(channels.size);
    }
  }

  function onChain(ch: Channel): Promise<void> {
    const run = ch.tail.then(() => sync(ch));
    ch.tail = run.catch(() => undefined);
    return run;
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
      held ??= [];
      for (const ch of [...channels.values()]) {
        await onChain(ch).catch((err: unknown) => logger.error({ err, event: ch.event }, 'pubsub cannot re-LISTEN'));
      }
      if (gen !== generation || closed) continue;
      // Subscribers learn of possible loss after LISTEN is back (a re-read now sees everything) and before any
      // message that arrived since.
      for (const ch of channels.values()) for (const q of ch.queues) q.signalDropped();
      const waiting = held;
      held = undefined;
      for (const [event, payload] of waiting) dispatch(event, payload);
      connected = true;
      metrics.connected.set(1);
      logger.info({ channels: channels.size }, 'pubsub reconnected');
      return;
    }
  }

  async function subscribeQueue(event: string, listener: ListenerWithErr): Promise<Cancel> {
    try {
      if (closing) throw new ErrPubsubClosed();
      validateChannel(event);
    } catch (err) {
      metrics.subscribes.inc({ success: 'false' });
      throw err;
    }
    let ch = channels.get(event);
    if (!ch) {
      ch = { event, queues: new Set(), listening: false, tail: Promise.resolve() };
      channels.set(event, ch);
      metrics.currentEvents.set(channels.size);
    }
    const queue = new MessageQueue(listener, { logger, event, onDropSignal });
    ch.queues.add(queue);
    counts.subscribers++;
    metrics.currentSubscribers.inc();
    let cancelled: Promise<void> | undefined;
    const channel = ch;
    const cancel: Cancel = () =>
      (cancelled ??= (async () => {
        queue.close();
        if (!channel.queues.delete(queue)) return;
        counts.subscribers--;
        metrics.currentSubscribers.dec();
        // Safe from inside the subscription's own listener: nothing here waits on delivery.
        if (channel.queues.size === 0) await onChain(channel).catch((err: unknown) => logger.warn({ err, event }, 'pubsub UNLISTEN failed'));
      })());
    try {
      await onChain(channel);
    } catch (err) {
      metrics.subscribes.inc({ success: 'false' });
      await cancel();
      throw new Error(`pubsub: cannot LISTEN on ${event}`, { cause: err });
    }
    metrics.subscribes.inc({ success: 'true' });
    return cancel;
  }

  const sender = opts.sender ?? createPgBatchSender(opts.connectionConfig, logger);
  const batcher = new BatchingPublisher(sender, (n) => publishNotify(opts.pool, n.event, n.payload), logger, metrics, opts.batching);

  await connect();
  if (conn) {
    connected = true;
    metrics.connected.set(1);
  }

  let probe: LatencyProbe | undefined;

  const pubsub: PostgresPubsub = {
    get connected() {
      return connected;
    },
    async publish(event, payload) {
      let bytes: number;
      try {
        if (closed) throw new ErrPubsubClosed();
        validateChannel(event);
        const buf = validatePayload(payload);
        bytes = buf.length;
        await batcher.publish(event, typeof payload === 'string' ? payload : buf.toString('utf8'), bytes);
      } catch (err) {
        metrics.publishes.inc({ success: 'false' });
        throw err;
      }
      counts.publishes++;
      metrics.publishes.inc({ success: 'true' });
      metrics.publishedBytes.inc(bytes);
    },
    subscribe: (event: string, listener: Listener) => subscribeQueue(event, withoutErr(listener)),
    subscribeWithErr: subscribeQueue,
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
        for (const ch of channels.values()) {
          for (const q of ch.queues) q.close();
          ch.queues.clear();
        }
        channels.clear();
        counts.subscribers = 0;
        metrics.currentSubscribers.set(0);
        metrics.currentEvents.set(0);
        connected = false;
        metrics.connected.set(0);
        const c = conn;
        conn = undefined;
        await c?.close();
      })());
    },
    stats() {
      return {
        connected,
        subscribers: counts.subscribers,
        events: channels.size,
        publishes: counts.publishes,
        flushes: batcher.counts.flushes,
        flushedMessages: batcher.counts.flushedMessages,
        flushFailures: batcher.counts.failures,
        fallbacks: batcher.counts.fallbacks,
        received: counts.received,
        dropSignals: counts.dropSignals,
        disconnections: counts.disconnections,
      };
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
