import { performance } from 'node:perf_hooks';

import pg from 'pg';

import type { Logger } from '../observability/logger.js';
import type { NamedQuery, Queryable, Row } from '../postgres/pool.js';
import { publishNotify, publishNotifyBatch } from '../store/pubsub.js';
import type { PubsubMetrics } from './metrics.js';
import { resolveConnectionConfig, type ConnectionConfigSource } from './listener.js';
import { ErrPubsubClosed } from './pubsub.js';

export interface Notification {
  event: string;
  payload: string;
}

/** Sends one batch as one transaction. Resets itself (a new connection next time) when told a send failed. */
export interface BatchSender {
  send(batch: readonly Notification[]): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

/**
 * The dedicated sender: its own `pg.Client`, connected on first use and again after a reset. A connection that cannot
 * be made is retried after a backoff (100 ms doubling to 5 s); meanwhile flushes fail at once and fall back to the
 * pool, so a database that is down costs no connection attempt per publish.
 */
export function createPgBatchSender(source: ConnectionConfigSource, logger: Logger): BatchSender {
  let client: Promise<pg.Client> | undefined;
  let retryAt = 0;
  let backoffMs = 0;
  const drop = (c: Promise<pg.Client>) => void c.then((cl) => cl.end(), () => undefined).catch(() => undefined);

  async function connect(): Promise<pg.Client> {
    const config = await resolveConnectionConfig(source);
    // A flush that hangs (a dead peer) must fail and fall back rather than stall every publish behind it.
    const c = new pg.Client({
      ...config,
      application_name: 'coder-lite pubsub sender',
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
      query_timeout: 30_000,
    });
    // Listening before connecting: a connection that dies (idle, or mid-flush) must never raise an unhandled
    // 'error'. The flush in progress rejects on its own; an idle one is replaced on the next flush.
    c.on('error', (err) => {
      logger.warn({ err }, 'pubsub sender connection failed; reconnecting on the next flush');
      if (client === connecting) client = undefined;
    });
    const connecting = c.connect().then(
      () => c,
      async (err: unknown) => {
        await c.end().catch(() => undefined);
        throw err;
      },
    );
    return connecting;
  }

  const asQueryable = (c: pg.Client): Queryable => ({
    query: <R extends Row>(q: NamedQuery, values?: readonly unknown[]) => c.query<R>({ name: q.name, text: q.text, values: values as unknown[] }),
  });

  return {
    async send(batch) {
      if (!client && performance.now() < retryAt) throw new Error('pubsub sender: not reconnecting yet (backoff after a failed connect)');
      const connecting = (client ??= connect());
      let db: Queryable;
      try {
        db = asQueryable(await connecting);
      } catch (err) {
        if (client === connecting) client = undefined;
        backoffMs = Math.min(Math.max(backoffMs * 2, 100), 5000);
        retryAt = performance.now() + backoffMs;
        throw err;
      }
      backoffMs = 0;
      if (batch.length === 1) {
        await publishNotify(db, batch[0]!.event, batch[0]!.payload);
      } else {
        await publishNotifyBatch(
          db,
          batch.map((n) => n.event),
          batch.map((n) => n.payload),
        );
      }
    },
    reset() {
      if (client) drop(client);
      client = undefined;
    },
    async close() {
      const c = client;
      client = undefined;
      if (c) await c.then((cl) => cl.end(), () => undefined).catch(() => undefined);
    },
  };
}

export interface BatchingOptions {
  /** Most messages in one transaction. */
  maxCount?: number;
  /** Most payload bytes in one transaction. */
  maxBytes?: number;
  /** How long close() waits for queued messages to go out. */
  drainTimeoutMs?: number;
}

interface Pending extends Notification {
  bytes: number;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Group commit for NOTIFY: when no flush is in flight a publish goes out at once (unbatched latency at low load);
 * while one is in flight, publishes queue and all of them go in the next transaction as soon as it returns
 * (batched throughput under load). A publish resolves when its transaction commits.
 */
export class BatchingPublisher {
  private readonly pending: Pending[] = [];
  private flushing = false;
  private closing = false;
  private idle: Array<() => void> = [];
  private readonly maxCount: number;
  private readonly maxBytes: number;
  private readonly drainTimeoutMs: number;

  constructor(
    private readonly sender: BatchSender,
    /** Publishes one message through the pool, when the sender failed. */
    private readonly fallback: (n: Notification) => Promise<void>,
    private readonly logger: Logger,
    private readonly metrics: PubsubMetrics,
    opts: BatchingOptions = {},
  ) {
    this.maxCount = opts.maxCount ?? 1000;
    this.maxBytes = opts.maxBytes ?? 1 << 20;
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 15_000;
  }

  publish(event: string, payload: string, bytes: number): Promise<void> {
    if (this.closing) return Promise.reject(new ErrPubsubClosed());
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ event, payload, bytes, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        // A microtask, so publishes made in the same tick share the first transaction.
        queueMicrotask(() => void this.run());
      }
    });
  }

  /** Waits up to the drain timeout for queued messages, then fails the rest. Resolves with how many were dropped. */
  async close(): Promise<number> {
    this.closing = true;
    if (this.flushing) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => this.idle.push(r)),
        new Promise<void>((r) => (timer = setTimeout(r, this.drainTimeoutMs))),
      ]);
      clearTimeout(timer);
    }
    const dropped = this.pending.splice(0);
    for (const p of dropped) p.reject(new ErrPubsubClosed());
    this.metrics.batchQueueDepth.set(0);
    await this.sender.close();
    return dropped.length;
  }

  private take(): Pending[] {
    const seen = new Set<string>();
    let bytes = 0;
    let n = 0;
    for (; n < this.pending.length && n < this.maxCount; n++) {
      const p = this.pending[n]!;
      // PostgreSQL folds identical notifications in one transaction; the duplicate waits for the next one.
      const key = `${p.event}\0${p.payload}`;
      if (seen.has(key) || (n > 0 && bytes + p.bytes > this.maxBytes)) break;
      seen.add(key);
      bytes += p.bytes;
    }
    return this.pending.splice(0, n);
  }

  private async run(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.take();
      this.metrics.batchQueueDepth.set(this.pending.length);
      const t0 = performance.now();
      try {
        await this.sender.send(batch);
        this.metrics.batchFlushDuration.observe((performance.now() - t0) / 1000);
        this.metrics.batchSize.observe(batch.length);
        this.metrics.batchFlushes.inc();
        for (const p of batch) p.resolve();
      } catch (err) {
        this.metrics.batchFlushFailures.inc();
        this.logger.warn({ err, messages: batch.length }, 'pubsub flush failed; replaying through the pool');
        this.sender.reset();
        // In order and before anything queued later, so subscribers still see publish order.
        for (const p of batch) {
          this.metrics.batchDelegateFallbacks.inc();
          try {
            await this.fallback(p);
            p.resolve();
          } catch (fallbackErr) {
            p.reject(new Error(`pubsub: publish to ${p.event} failed`, { cause: fallbackErr }));
          }
        }
      }
    }
    this.flushing = false;
    for (const r of this.idle.splice(0)) r();
  }
}
