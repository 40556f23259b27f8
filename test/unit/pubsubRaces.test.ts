import pg from 'pg';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import type { BatchSender } from '../../src/daemon/pubsub/batching.js';
import type { ConnectListener, ListenerConnection, ListenerEvents } from '../../src/daemon/pubsub/listener.js';
import { createPostgresPubsub, type PostgresPubsubOptions } from '../../src/daemon/pubsub/postgres.js';
import { ErrDroppedMessages } from '../../src/daemon/pubsub/pubsub.js';
import { metricValue } from '../helpers/metrics.js';

/**
 * A LISTEN connection that pushes notifications into the pubsub *while* its LISTEN, UNLISTEN and close calls are in
 * progress — the situation that deadlocked Coder when dispatch and LISTEN shared a lock (#11950).
 */
class NoisyConnection implements ListenerConnection {
  readonly listened = new Set<string>();
  calls: string[] = [];

  constructor(
    readonly events: ListenerEvents,
    private readonly noise: () => void,
  ) {}

  async listen(event: string): Promise<void> {
    this.calls.push(`listen ${event}`);
    this.noise();
    await Promise.resolve();
    this.noise();
    this.listened.add(event);
  }

  async unlisten(event: string): Promise<void> {
    this.calls.push(`unlisten ${event}`);
    this.noise();
    await Promise.resolve();
    this.noise();
    this.listened.delete(event);
  }

  async close(): Promise<void> {
    this.noise();
    await Promise.resolve();
    this.noise();
  }
}

/** Publishing loops back to the current fake connection, like NOTIFY on a server. */
function fakeBackend() {
  const conns: NoisyConnection[] = [];
  let noiseChannels: string[] = [];
  const connect: ConnectListener = async (events) => {
    const conn = new NoisyConnection(events, () => {
      for (const ch of noiseChannels) events.notification(ch, 'noise');
    });
    conns.push(conn);
    return conn;
  };
  const sender: BatchSender = {
    async send(batch) {
      const conn = conns.at(-1)!;
      for (const n of batch) if (conn.listened.has(n.event)) conn.events.notification(n.event, n.payload);
    },
    reset: () => undefined,
    close: async () => undefined,
  };
  return {
    conns,
    connect,
    sender,
    setNoise: (chs: string[]) => (noiseChannels = chs),
  };
}

async function make(backend: ReturnType<typeof fakeBackend>, overrides: Partial<PostgresPubsubOptions> = {}) {
  const registry = new Registry();
  const ps = await createPostgresPubsub({
    connectionConfig: {},
    pool: { query: () => Promise.reject(new Error('no pool in this test')) },
    logger: silentLogger(),
    registry,
    connectListener: backend.connect,
    sender: backend.sender,
    latencyIntervalMs: 0,
    reconnectInitialMs: 1,
    ...overrides,
  });
  return Object.assign(ps, { metric: (name: string) => metricValue(registry, name) });
}

describe('PostgreSQL pubsub races (fake LISTEN connection)', () => {
  it('completes LISTEN, UNLISTEN and close while notifications arrive during each call', async () => {
    const backend = fakeBackend();
    const ps = await make(backend);
    const got: string[] = [];
    backend.setNoise(['a', 'b']);
    const cancelA = await ps.subscribe('a', (p) => void got.push(`a:${p.toString()}`));
    const cancelB = await ps.subscribe('b', (p) => void got.push(`b:${p.toString()}`));
    await ps.publish('a', 'real');
    await expect.poll(() => got).toContain('a:real');
    await cancelA();
    await cancelB();
    await ps.close();
    expect(backend.conns[0]!.calls).toEqual(['listen a', 'listen b', 'unlisten a', 'unlisten b']);
    // Noise on a channel counts once it is listened, and nothing is delivered after its cancel.
    expect(got.filter((g) => g.startsWith('b:')).every((g) => g === 'b:noise')).toBe(true);
  });

  it('keeps LISTEN/UNLISTEN in call order per channel under concurrent cancel and resubscribe', async () => {
    const backend = fakeBackend();
    const ps = await make(backend);
    const events = Array.from({ length: 500 }, (_, i) => `ch${i}`);
    const first = await Promise.all(events.map((e) => ps.subscribe(e, () => undefined)));
    const got = new Map<string, number>();
    const second = await Promise.all(
      events.map(async (e, i) => {
        const cancelled = first[i]!();
        const cancel = await ps.subscribe(e, () => void got.set(e, (got.get(e) ?? 0) + 1));
        await cancelled;
        return cancel;
      }),
    );
    const conn = backend.conns[0]!;
    expect(conn.listened.size).toBe(500);
    await Promise.all(events.map((e) => ps.publish(e, 'x')));
    await expect.poll(() => got.size).toBe(500);

    await Promise.all(second.map((c) => c()));
    expect(conn.listened.size).toBe(0);
    expect(await ps.metric('coder_pubsub_current_subscribers')).toBe(0);
    expect(await ps.metric('coder_pubsub_current_events')).toBe(0);
    await ps.close();
  });

  it('after a reconnect, signals the drop before any message, including ones that arrive during re-LISTEN', async () => {
    const backend = fakeBackend();
    const ps = await make(backend);
    const got: Array<string | Error> = [];
    await ps.subscribeWithErr('a', (p, err) => void got.push(err ?? p!.toString()));
    await ps.subscribe('b', () => undefined);
    await ps.publish('a', 'before');
    await expect.poll(() => got).toEqual(['before']);

    backend.setNoise(['a']);
    backend.conns[0]!.events.lost(new Error('connection killed'));
    expect(ps.connected).toBe(false);
    await expect.poll(() => ps.connected).toBe(true);
    const conn = backend.conns[1]!;
    expect([...conn.listened].sort()).toEqual(['a', 'b']);
    backend.setNoise([]);
    await ps.publish('a', 'after');
    await expect.poll(() => got.at(-1)).toBe('after');
    expect(got[0]).toBe('before');
    expect(got[1]).toBeInstanceOf(ErrDroppedMessages);
    expect(got.slice(2, -1).every((g) => g === 'noise')).toBe(true);
    expect(await ps.metric('coder_pubsub_disconnections_total')).toBe(1);
    expect(await ps.metric('coder_pubsub_dropped_signals_total')).toBe(2);
    await ps.close();
  });

  it('treats a LISTEN that fails because its backend was terminated as done, before the connection reports the loss', async () => {
    const backend = fakeBackend();
    const ps = await make(backend);
    const conn = backend.conns[0]!;
    // As pg does for pg_terminate_backend: the statement rejects with 57P01, and 'error' comes a moment later.
    conn.listen = async () => {
      const err = Object.assign(new pg.DatabaseError('terminating connection due to administrator command', 0, 'error'), { code: '57P01' });
      queueMicrotask(() => queueMicrotask(() => conn.events.lost(err)));
      throw err;
    };
    const got: Array<string | Error> = [];
    await ps.subscribeWithErr('terminated', (p, err) => void got.push(err ?? p!.toString()));
    await expect.poll(() => ps.connected).toBe(true);
    expect(backend.conns[1]!.listened.has('terminated')).toBe(true);
    await ps.publish('terminated', 'after');
    await expect.poll(() => got.length).toBe(2);
    expect(got[0]).toBeInstanceOf(ErrDroppedMessages);
    expect(got[1]).toBe('after');
    await ps.close();
  });

  it('treats a subscribe while disconnected as done and listens on reconnect', async () => {
    const backend = fakeBackend();
    let refuse = false;
    const connect: ConnectListener = (events) => (refuse ? Promise.reject(new Error('refused')) : backend.connect(events));
    const ps = await make(backend, { connectListener: connect, reconnectMaxMs: 5 });
    refuse = true;
    backend.conns[0]!.events.lost(new Error('gone'));
    const got: Array<string | Error> = [];
    await ps.subscribeWithErr('late', (p, err) => void got.push(err ?? p!.toString()));
    refuse = false;
    await expect.poll(() => ps.connected).toBe(true);
    expect(backend.conns[1]!.listened.has('late')).toBe(true);
    await ps.publish('late', 'hi');
    await expect.poll(() => got.length).toBe(2);
    expect(got[0]).toBeInstanceOf(ErrDroppedMessages);
    expect(got[1]).toBe('hi');
    await ps.close();
  });
});
