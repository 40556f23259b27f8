import { setTimeout as sleep } from 'node:timers/promises';

import { randomBytes } from 'node:crypto';

import { describe, expect, inject, it } from 'vitest';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import { createMemoryPubsub } from '../../src/daemon/pubsub/memory.js';
import { createNatsPubsub, parseNatsUrls } from '../../src/daemon/pubsub/nats.js';
import { createPostgresPubsub } from '../../src/daemon/pubsub/postgres.js';
import { ErrDroppedMessages, ErrPubsubClosed, maxPayloadBytes, PubsubInputError, type Pubsub } from '../../src/daemon/pubsub/pubsub.js';
import { queueCapacity } from '../../src/daemon/pubsub/queue.js';
import { createTestPool } from '../helpers/db.js';

// Made at file level, so it lives (and is cleaned up) with the file, not with the first test that uses it.
const { db } = await createTestPool(2);
// The run's nats-server is shared by every test file: this file's subjects live under a prefix of its own.
const natsPrefix = `test_${randomBytes(4).toString('hex')}`;

interface Backend {
  make(): Promise<Pubsub>;
  /** The largest payload the backend carries. */
  maxPayload: number;
}

// One suite, every backend: they must be interchangeable for every caller.
const backends: Array<[string, Backend]> = [
  ['memory', { make: async () => createMemoryPubsub(), maxPayload: maxPayloadBytes }],
  [
    'postgres',
    {
      async make() {
        return createPostgresPubsub({ connectionConfig: db.connectionConfig, pool: db, logger: silentLogger(), latencyIntervalMs: 0 });
      },
      maxPayload: maxPayloadBytes,
    },
  ],
  [
    'nats',
    {
      make: () => createNatsPubsub({ target: parseNatsUrls(inject('natsUrl')), subjectPrefix: natsPrefix, logger: silentLogger(), latencyIntervalMs: 0 }),
      // nats-server's default max_payload.
      maxPayload: 1024 * 1024,
    },
  ],
];

describe.each(backends)('pubsub contract: %s', (_name, { make, maxPayload }) => {
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

  it('rejects what the backend cannot carry with typed errors naming the limit, sending nothing', () =>
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
      await expect(ps.publish(ch, 'x'.repeat(maxPayload + 1))).rejects.toThrow(`shorter than ${maxPayload + 1} bytes`);
      expect(await limit(ps.publish(ch, 'x'.repeat(maxPayload + 1)))).toBe('payload-length');
      expect(await limit(ps.publish(ch, 'a\0b'))).toBe('payload-nul');
      expect(await limit(ps.publish(ch, Buffer.from([0x61, 0xff, 0x62])))).toBe('payload-utf8');

      // The largest legal message goes through, and is the first thing the subscriber sees.
      await ps.publish(ch, 'y'.repeat(maxPayload));
      await expect.poll(() => got.length).toBe(1);
      expect(got[0]).toBe('y'.repeat(maxPayload));
    }));

  it('delivers a publish made right after subscribe resolves, to that subscriber and to its own publisher', () =>
    withPubsub(async (ps) => {
      // Channels that a subject mapping could confuse: separators, wildcards, whitespace, an escape character.
      const names = ['a.b', 'a*b', 'a>', 'a b', 'a%2Eb', 'a\tb', 'é:ü', 'a_b'];
      const got = new Map<string, string[]>();
      for (const n of names) {
        got.set(n, []);
        await ps.subscribe(n, (p) => void got.get(n)!.push(p.toString()));
      }
      for (const n of names) await ps.publish(n, `to ${n}`);
      await expect.poll(() => [...got.values()].every((g) => g.length === 1)).toBe(true);
      for (const n of names) expect(got.get(n)).toEqual([`to ${n}`]);
    }));

  it('signals dropped messages when a listener falls behind its queue, and delivers again after', () =>
    withPubsub(async (ps) => {
      const ch = channel();
      const got: Array<string | Error> = [];
      let release!: () => void;
      const blocked = new Promise<void>((r) => (release = r));
      let first = true;
      await ps.subscribeWithErr(ch, async (p, err) => {
        got.push(err ?? p!.toString());
        if (first) {
          first = false;
          await blocked;
        }
      });
      // One message in the listener, a full queue behind it, and one more that cannot fit.
      const total = queueCapacity + 2;
      for (let i = 0; i < total; i++) await ps.publish(ch, String(i));
      // The last publish is delivered (or dropped) once the backend has sent it back: a marker on a second channel
      // published after it arrives after it.
      const marker = channel();
      let markerSeen = false;
      await ps.subscribe(marker, () => void (markerSeen = true));
      await ps.publish(marker, 'm');
      await expect.poll(() => markerSeen, { timeout: 10_000 }).toBe(true);
      release();
      await expect.poll(() => got.length, { timeout: 10_000 }).toBe(queueCapacity + 1);
      expect(got[0]).toBe('0');
      // The newest queued slot became the signal: the subscriber learns of the loss before anything newer.
      expect(got.at(-1)).toBeInstanceOf(ErrDroppedMessages);
      expect(got.slice(1, -1)).toEqual(Array.from({ length: queueCapacity - 1 }, (_, i) => String(i + 1)));
      await ps.publish(ch, 'after');
      await expect.poll(() => got.at(-1)).toBe('after');
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
