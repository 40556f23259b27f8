import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import { namedQuery } from '../../src/daemon/postgres/pool.js';
import { createPgBatchSender, type BatchSender } from '../../src/daemon/pubsub/batching.js';
import { pgListenerConnector, type ConnectListener } from '../../src/daemon/pubsub/listener.js';
import { createPostgresPubsub, type PostgresPubsubOptions } from '../../src/daemon/pubsub/postgres.js';
import { ErrDroppedMessages } from '../../src/daemon/pubsub/pubsub.js';
import { createTestPool } from '../helpers/db.js';
import { metricValue } from '../helpers/metrics.js';
import { expectOrderedAroundDrop } from '../helpers/pubsubOrder.js';

const { db } = await createTestPool(4);
const logger = silentLogger();

async function open(overrides: Partial<PostgresPubsubOptions> = {}) {
  const registry = new Registry();
  const ps = await createPostgresPubsub({ connectionConfig: db.connectionConfig, pool: db, logger, registry, latencyIntervalMs: 0, ...overrides });
  return { ps, registry };
}


const listenerPidQ = namedQuery(
  'testListenerPid',
  "SELECT pid FROM pg_stat_activity WHERE application_name = 'coder-lite pubsub' AND datname = current_database()",
);
const terminateQ = namedQuery('testTerminate', 'SELECT pg_terminate_backend($1)');
// Only a sender caught running a statement: its flush is in flight when it dies.
const terminateActiveSenderQ = namedQuery(
  'testTerminateActiveSender',
  "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'coder-lite pubsub sender' AND state = 'active' AND datname = current_database()",
);

describe('PostgreSQL pubsub', () => {
  it('recovers from a killed LISTEN connection, signalling the drop before newer messages', async () => {
    // Reconnects wait at a gate, so the disconnected state can be observed without racing the backoff.
    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    let attempts = 0;
    const real = pgListenerConnector(db.connectionConfig);
    const connectListener: ConnectListener = async (events) => {
      if (attempts++ > 0) await gate;
      return real(events);
    };
    const { ps, registry } = await open({ connectListener, reconnectInitialMs: 10 });
    const got: Array<string | Error> = [];
    await ps.subscribeWithErr('reconnect', (p, err) => void got.push(err ?? p!.toString()));
    const plain: string[] = [];
    await ps.subscribe('reconnect', (p) => void plain.push(p.toString()));
    await ps.publish('reconnect', 'before');
    await expect.poll(() => got).toEqual(['before']);
    expect(await metricValue(registry, 'coder_pubsub_connected')).toBe(1);
    expect(await metricValue(registry, 'coder_pubsub_disconnections_total')).toBe(0);

    const { rows } = await db.query<{ pid: number }>(listenerPidQ);
    expect(rows).toHaveLength(1);
    await db.query(terminateQ, [rows[0]!.pid]);
    await expect.poll(() => ps.connected).toBe(false);
    expect(await metricValue(registry, 'coder_pubsub_connected')).toBe(0);
    expect(await metricValue(registry, 'coder_pubsub_disconnections_total')).toBe(1);

    openGate();
    await expect.poll(() => ps.connected, { timeout: 10_000 }).toBe(true);
    expect(await metricValue(registry, 'coder_pubsub_connected')).toBe(1);
    await ps.publish('reconnect', 'after');
    await expect.poll(() => got.at(-1)).toBe('after');
    expect(got).toHaveLength(3);
    expect(got[1]).toBeInstanceOf(ErrDroppedMessages);
    await expect.poll(() => plain).toEqual(['before', 'after']);
    await ps.close();
  });

  it('lives through its LISTEN and sender backends terminated mid-LISTEN and mid-flush: every publish lands, the drop signal first', async () => {
    const { ps, registry } = await open({ reconnectInitialMs: 10 });
    const got: Array<number | Error> = [];
    let n = 0;
    // Published messages the subscriber has neither received nor been told it may have lost.
    let accounted = 0;
    let progressed: () => void = () => undefined;
    await ps.subscribeWithErr('terminated', (p, err) => {
      got.push(err ?? Number(p!.toString()));
      accounted = err ? n : accounted + 1;
      progressed();
    });
    const late: string[] = [];
    const dropAt = () => got.findIndex((g) => g instanceof ErrDroppedMessages);
    let streaming = true;
    // Bursts keep a flush in flight nearly all the time; at most 200 messages are outstanding, so a starved test
    // process never overflows the subscriber's queue. A publish that rejects fails the test through `stream`.
    const stream = (async () => {
      while (streaming) {
        if (n - accounted > 200) await new Promise<void>((r) => (progressed = r));
        else await Promise.all(Array.from({ length: 20 }, () => ps.publish('terminated', String(n++))));
      }
    })();
    try {
      await expect.poll(() => got.length).toBeGreaterThan(100);
      // Mid-flush: terminate the sender while it runs a statement, until a flush has failed.
      await expect
        .poll(
          async () => {
            await db.query(terminateActiveSenderQ);
            return metricValue(registry, 'coder_pubsub_batch_flush_failures_total');
          },
          { timeout: 20_000 },
        )
        .toBeGreaterThanOrEqual(1);
      // Mid-LISTEN: the listener dies while new channels are being listened.
      const { rows } = await db.query<{ pid: number }>(listenerPidQ);
      const lateSubscribes = Array.from({ length: 10 }, (_, i) => ps.subscribe(`late_${i}`, (p) => void late.push(p.toString())));
      await db.query(terminateQ, [rows[0]!.pid]);
      await Promise.all(lateSubscribes);
      await expect.poll(() => metricValue(registry, 'coder_pubsub_disconnections_total')).toBe(1);
      await expect.poll(() => ps.connected, { timeout: 10_000 }).toBe(true);
      await expect.poll(() => (dropAt() < 0 ? 0 : got.length - dropAt()), { timeout: 10_000 }).toBeGreaterThan(100);
    } finally {
      // Stops the stream on a failure too; a publish that rejected fails the test here.
      streaming = false;
      progressed();
      await stream;
    }
    expectOrderedAroundDrop(got);
    expect(await metricValue(registry, 'coder_pubsub_batch_delegate_fallbacks_total')).toBeGreaterThanOrEqual(1);
    // The channels subscribed during the outage are listened on the new connection.
    for (let i = 0; i < 10; i++) await ps.publish(`late_${i}`, String(i));
    await expect.poll(() => late.sort()).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
    await ps.close();
  });

  it('batches concurrent publishes into few transactions, in order', async () => {
    const { ps, registry } = await open();
    const got: number[] = [];
    await ps.subscribe('batch', (p) => void got.push(Number(p.toString())));
    await Promise.all(Array.from({ length: 1000 }, (_, i) => ps.publish('batch', String(i))));
    await expect.poll(() => got.length).toBe(1000);
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    const flushes = await metricValue(registry, 'coder_pubsub_batch_flushes_total');
    expect(await metricValue(registry, 'coder_pubsub_batch_size', {}, 'sum')).toBe(1000);
    // The first flush goes alone; everything queued behind it shares the next transactions.
    expect(flushes).toBeLessThan(20);
    expect(await metricValue(registry, 'coder_pubsub_batch_size')).toBe(flushes);
    await ps.close();
  });

  it('delivers both of two identical publishes made in one burst', async () => {
    const { ps } = await open();
    const got: string[] = [];
    await ps.subscribe('dup', (p) => void got.push(p.toString()));
    await Promise.all(['same', 'same', 'other', 'same'].map((m) => ps.publish('dup', m)));
    await expect.poll(() => got).toEqual(['same', 'same', 'other', 'same']);
    await ps.close();
  });

  it('replays a failed flush through the pool and keeps the order', async () => {
    const real = createPgBatchSender(db.connectionConfig, logger);
    let failures = 0;
    const sender: BatchSender = {
      async send(batch) {
        if (batch.length > 1 && failures === 0) {
          failures++;
          throw new Error('injected flush failure');
        }
        await real.send(batch);
      },
      reset: () => real.reset(),
      close: () => real.close(),
    };
    const { ps, registry } = await open({ sender });
    const got: number[] = [];
    await ps.subscribe('fallback', (p) => void got.push(Number(p.toString())));
    const queriesBefore = db.stats().queries.publishNotify ?? 0;
    await Promise.all(Array.from({ length: 50 }, (_, i) => ps.publish('fallback', String(i))));
    await expect.poll(() => got.length).toBe(50);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const fallbacks = await metricValue(registry, 'coder_pubsub_batch_delegate_fallbacks_total');
    expect(await metricValue(registry, 'coder_pubsub_batch_flush_failures_total')).toBe(1);
    expect(fallbacks).toBeGreaterThan(1);
    expect((db.stats().queries.publishNotify ?? 0) - queriesBefore).toBe(fallbacks);
    await ps.close();
  });

  it('drains queued publishes on close', async () => {
    const { ps: subscriber } = await open();
    const got: number[] = [];
    await subscriber.subscribe('drain', (p) => void got.push(Number(p.toString())));
    const { ps } = await open();
    const published = Array.from({ length: 300 }, (_, i) => ps.publish('drain', String(i)));
    await ps.close();
    await expect(Promise.all(published)).resolves.toHaveLength(300);
    await expect.poll(() => got.length).toBe(300);
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i));
    await subscriber.close();
  });

  it('keeps LISTEN state right with 500 channels cancelled and resubscribed at once', async () => {
    const listened = new Set<string>();
    const real = pgListenerConnector(db.connectionConfig);
    // Observes what the real connection was told, to check nothing stays registered on the server.
    const connectListener: ConnectListener = async (events) => {
      const conn = await real(events);
      return {
        listen: async (e) => {
          await conn.listen(e);
          listened.add(e);
        },
        unlisten: async (e) => {
          await conn.unlisten(e);
          listened.delete(e);
        },
        close: () => conn.close(),
      };
    };
    const { ps, registry } = await open({ connectListener });
    const events = Array.from({ length: 500 }, (_, i) => `race_${i}`);
    const first = await Promise.all(events.map((e) => ps.subscribe(e, () => undefined)));
    const got = new Set<string>();
    const second = await Promise.all(
      events.map(async (e, i) => {
        const cancelled = first[i]!();
        const cancel = await ps.subscribe(e, () => void got.add(e));
        await cancelled;
        return cancel;
      }),
    );
    expect(listened.size).toBe(500);
    await Promise.all(events.map((e) => ps.publish(e, 'ping')));
    await expect.poll(() => got.size).toBe(500);
    expect(await metricValue(registry, 'coder_pubsub_current_subscribers')).toBe(500);
    expect(await metricValue(registry, 'coder_pubsub_current_events')).toBe(500);

    await Promise.all(second.map((c) => c()));
    expect(listened.size).toBe(0);
    expect(await metricValue(registry, 'coder_pubsub_current_subscribers')).toBe(0);
    expect(await metricValue(registry, 'coder_pubsub_current_events')).toBe(0);
    await ps.close();
  });

  it('counts publishes, subscribes, messages and bytes under Coder names', async () => {
    const { ps, registry } = await open();
    const got: number[] = [];
    await ps.subscribe('metrics', (p) => void got.push(p.length));
    await expect(ps.subscribe('x'.repeat(64), () => undefined)).rejects.toThrow();
    await ps.publish('metrics', 'hello');
    await ps.publish('metrics', 'z'.repeat(7600));
    await expect(ps.publish('metrics', 'a\0')).rejects.toThrow();
    await expect.poll(() => got).toEqual([5, 7600]);
    const v = (name: string, labels?: Record<string, string>) => metricValue(registry, name, labels);
    expect(await v('coder_pubsub_publishes_total', { success: 'true' })).toBe(2);
    expect(await v('coder_pubsub_publishes_total', { success: 'false' })).toBe(1);
    expect(await v('coder_pubsub_subscribes_total', { success: 'true' })).toBe(1);
    expect(await v('coder_pubsub_subscribes_total', { success: 'false' })).toBe(1);
    expect(await v('coder_pubsub_messages_total', { size: 'normal' })).toBe(1);
    expect(await v('coder_pubsub_messages_total', { size: 'colossal' })).toBe(1);
    expect(await v('coder_pubsub_published_bytes_total')).toBe(7605);
    expect(await v('coder_pubsub_received_bytes_total')).toBe(7605);
    await ps.close();
  });

  it('populates the latency histograms from the background probe', async () => {
    const { ps, registry } = await open({ latencyIntervalMs: 20 });
    await expect.poll(() => metricValue(registry, 'coder_pubsub_receive_latency_seconds')).toBeGreaterThanOrEqual(2);
    expect(await metricValue(registry, 'coder_pubsub_send_latency_seconds')).toBeGreaterThanOrEqual(2);
    expect(await metricValue(registry, 'coder_pubsub_latency_measures_total')).toBeGreaterThanOrEqual(2);
    expect(await metricValue(registry, 'coder_pubsub_latency_measure_errs_total')).toBe(0);
    await ps.close();
  });
});
