import { describe, expect, it, vi } from 'vitest';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import { ErrDroppedMessages } from '../../src/daemon/pubsub/pubsub.js';
import { MessageQueue, queueCapacity, withoutErr } from '../../src/daemon/pubsub/queue.js';

const logger = silentLogger();

/** A listener that blocks on its first call until released, recording everything it gets. */
function blockedListener() {
  const got: Array<string | Error> = [];
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let first = true;
  let enteredFirst!: () => void;
  const entered = new Promise<void>((r) => (enteredFirst = r));
  const listener = async (payload: Buffer | undefined, err: Error | undefined) => {
    if (first) {
      first = false;
      enteredFirst();
      await released;
    }
    got.push(err ?? payload!.toString());
  };
  return { got, release, entered, listener };
}

describe('MessageQueue', () => {
  it('keeps 2048 in-order messages and then signals the drop when the consumer is blocked', async () => {
    const { got, release, entered, listener } = blockedListener();
    const onDropSignal = vi.fn();
    const q = new MessageQueue(listener, { logger, event: 'e', onDropSignal });
    // One extra because the first message sits in the blocked listener, one more to overflow.
    q.enqueue(Buffer.from('0'));
    await entered;
    for (let i = 1; i < queueCapacity + 2; i++) q.enqueue(Buffer.from(String(i)));
    expect(q.length).toBe(queueCapacity);
    release();
    await expect.poll(() => got.length).toBe(queueCapacity + 1);
    const messages = got.slice(0, queueCapacity);
    expect(messages).toEqual(Array.from({ length: queueCapacity }, (_, i) => String(i)));
    expect(got[queueCapacity]).toBeInstanceOf(ErrDroppedMessages);
    expect(onDropSignal).toHaveBeenCalledTimes(1);
  });

  it('never shows the drop signal to a plain listener', async () => {
    const seen: Array<string | undefined> = [];
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const q = new MessageQueue(
      withoutErr(async (p) => {
        seen.push(p.toString());
        if (seen.length === 1) await released;
      }),
      { logger, event: 'e' },
    );
    q.enqueue(Buffer.from('0'));
    await expect.poll(() => seen.length).toBe(1);
    for (let i = 1; i < queueCapacity + 2; i++) q.enqueue(Buffer.from(String(i)));
    q.signalDropped();
    release();
    await expect.poll(() => q.length).toBe(0);
    q.enqueue(Buffer.from('after'));
    await expect.poll(() => seen.at(-1)).toBe('after');
    // The newest queued message gave its slot to the drop signal, which the plain listener skips.
    expect(seen).toEqual([...Array.from({ length: queueCapacity }, (_, i) => String(i)), 'after']);
  });

  it('delivers serially and keeps going after a listener throws', async () => {
    let active = 0;
    let maxActive = 0;
    const got: string[] = [];
    const q = new MessageQueue(
      async (p) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, Math.random() * 3));
        active--;
        const s = p!.toString();
        if (s === '3') throw new Error('listener bug');
        got.push(s);
      },
      { logger, event: 'e' },
    );
    for (let i = 0; i < 10; i++) q.enqueue(Buffer.from(String(i)));
    await expect.poll(() => got.length).toBe(9);
    expect(got).toEqual(['0', '1', '2', '4', '5', '6', '7', '8', '9']);
    expect(maxActive).toBe(1);
  });

  it('puts a reconnect signal behind what is already queued', async () => {
    const { got, release, entered, listener } = blockedListener();
    const q = new MessageQueue(listener, { logger, event: 'e' });
    q.enqueue(Buffer.from('a'));
    await entered;
    q.enqueue(Buffer.from('b'));
    q.signalDropped();
    q.enqueue(Buffer.from('c'));
    release();
    await expect.poll(() => got.length).toBe(4);
    expect(got[0]).toBe('a');
    expect(got[1]).toBe('b');
    expect(got[2]).toBeInstanceOf(ErrDroppedMessages);
    expect(got[3]).toBe('c');
  });

  it('stops delivering once closed, even with items queued', async () => {
    const { got, release, entered, listener } = blockedListener();
    const q = new MessageQueue(listener, { logger, event: 'e' });
    q.enqueue(Buffer.from('a'));
    await entered;
    q.enqueue(Buffer.from('b'));
    q.close();
    q.enqueue(Buffer.from('c'));
    release();
    await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual(['a']);
  });
});
