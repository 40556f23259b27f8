import { setTimeout as sleep } from 'node:timers/promises';

import { describe, expect, it } from 'vitest';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import { createMemoryPubsub } from '../../src/daemon/pubsub/memory.js';
import { createPostgresPubsub } from '../../src/daemon/pubsub/postgres.js';
import { ErrPubsubClosed, PubsubInputError, type Pubsub } from '../../src/daemon/pubsub/pubsub.js';
import { createTestPool } from '../helpers/db.js';

let pool: ReturnType<typeof createTestPool> | undefined;

// One suite, both backends: they must be interchangeable for every caller.
const backends: Array<[string, () => Promise<Pubsub>]> = [
  ['memory', async () => createMemoryPubsub()],
  [
    'postgres',
    async () => {
      const { db } = await (pool ??= createTestPool(2));
      return createPostgresPubsub({ connectionConfig: db.connectionConfig, pool: db, logger: silentLogger(), latencyIntervalMs: 0 });
    },
  ],
];

describe.each(backends)('pubsub contract: %s', (_name, make) => {
  let seq = 0;
  const channel = () => `contract_${seq++}`;

  async function withPubsub(fn: (ps: Pubsub) => Promise<void>): Promise<void> {
    const ps = await make();
    try {
      await fn(ps);
    } finally {
      await ps.close();
    }
  }

  it('delivers a published message to a subscriber', () =>
    withPubsub(async (ps) => {
      const ch = channel();
      const got: string[] = [];
      await ps.subscribe(ch, (p) => void got.push(p.toString()));
      await ps.publish(ch, 'hello');
      await ps.publish(ch, Buffer.from('wörld'));
      await expect.poll(() => got).toEqual(['hello', 'wörld']);
    }));

  it('delivers 100 publishes in order while the listener sleeps randomly', () =>
    withPubsub(async (ps) => {
      const ch = channel();
      const got: number[] = [];
      let active = 0;
      let overlapped = false;
      await ps.subscribe(ch, async (p) => {
        if (++active > 1) overlapped = true;
        await sleep(Math.random() * 3);
        got.push(Number(p.toString()));
        active--;
      });
      await Promise.all(Array.from({ length: 100 }, (_, i) => ps.publish(ch, String(i))));
      await expect.poll(() => got.length, { timeout: 10_000 }).toBe(100);
      expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i));
      expect(overlapped).toBe(false);
    }));

  it('stops delivery on cancel', () =>
    withPubsub(async (ps) => {
      const ch = channel();
      const a: string[] = [];
      const b: string[] = [];
      const cancelA = await ps.subscribe(ch, (p) => void a.push(p.toString()));
      await ps.subscribe(ch, (p) => void b.push(p.toString()));
      await ps.publish(ch, '1');
      await expect.poll(() => a).toEqual(['1']);
      await cancelA();
      await cancelA();
      await ps.publish(ch, '2');
      await expect.poll(() => b).toEqual(['1', '2']);
      expect(a).toEqual(['1']);
    }));

  it('lets a listener cancel its own subscription', () =>
    withPubsub(async (ps) => {
      const ch = channel();
      const self: string[] = [];
      const other: string[] = [];
      let cancelled = false;
      const cancel = await ps.subscribe(ch, async (p) => {
        self.push(p.toString());
        await cancel();
        cancelled = true;
      });
      await ps.subscribe(ch, (p) => void other.push(p.toString()));
      await ps.publish(ch, '1');
      await expect.poll(() => cancelled).toBe(true);
      await ps.publish(ch, '2');
      await ps.publish(ch, '3');
      await expect.poll(() => other).toEqual(['1', '2', '3']);
      expect(self).toEqual(['1']);
    }));

  it('keeps delivering after a listener throws, to it and to others', () =>
    withPubsub(async (ps) => {
      const ch = channel();
      const thrower: string[] = [];
      const other: string[] = [];
      await ps.subscribe(ch, (p) => {
        const s = p.toString();
        if (s === '2') throw new Error('listener bug');
        thrower.push(s);
      });
      await ps.subscribeWithErr(ch, async (p) => {
        other.push(p!.toString());
        throw new Error('async listener bug');
      });
      for (const m of ['1', '2', '3']) await ps.publish(ch, m);
      await expect.poll(() => thrower).toEqual(['1', '3']);
      await expect.poll(() => other).toEqual(['1', '2', '3']);
    }));

  it('rejects what PostgreSQL cannot carry with typed errors naming the limit, sending nothing', () =>
    withPubsub(async (ps) => {
      const ch = channel();
      const got: string[] = [];
      await ps.subscribe(ch, (p) => void got.push(p.toString()));
      const limit = (p: Promise<unknown>) => p.then(() => 'resolved', (err: unknown) => (err instanceof PubsubInputError ? err.limit : String(err)));

      await expect(ps.publish('c'.repeat(64), 'x')).rejects.toThrow(/1 to 63 bytes/);
      expect(await limit(ps.publish('c'.repeat(64), 'x'))).toBe('channel-length');
      expect(await limit(ps.publish('é'.repeat(32), 'x'))).toBe('channel-length');
      expect(await limit(ps.publish('', 'x'))).toBe('channel-length');
      expect(await limit(ps.subscribe('c'.repeat(64), () => undefined))).toBe('channel-length');
      await expect(ps.publish(ch, 'x'.repeat(8000))).rejects.toThrow(/shorter than 8000 bytes/);
      expect(await limit(ps.publish(ch, 'x'.repeat(8000)))).toBe('payload-length');
      expect(await limit(ps.publish(ch, 'a\0b'))).toBe('payload-nul');
      expect(await limit(ps.publish(ch, Buffer.from([0x61, 0xff, 0x62])))).toBe('payload-utf8');

      // The largest legal message goes through, and is the first thing the subscriber sees.
      await ps.publish(ch, 'y'.repeat(7999));
      await expect.poll(() => got.length).toBe(1);
      expect(got[0]).toBe('y'.repeat(7999));
    }));

  it('closes idempotently and refuses work afterwards', async () => {
    const ps = await make();
    const ch = channel();
    const cancel = await ps.subscribe(ch, () => undefined);
    const first = ps.close();
    const second = ps.close();
    expect(second).toBe(first);
    await first;
    await expect(ps.close()).resolves.toBeUndefined();
    await expect(cancel()).resolves.toBeUndefined();
    await expect(ps.subscribe(ch, () => undefined)).rejects.toBeInstanceOf(ErrPubsubClosed);
    await expect(ps.publish(ch, 'x')).rejects.toBeInstanceOf(ErrPubsubClosed);
  });
});
