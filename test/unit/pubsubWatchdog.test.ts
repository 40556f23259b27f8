import { describe, expect, it } from 'vitest';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import { createMemoryPubsub } from '../../src/daemon/pubsub/memory.js';
import type { Publisher, Pubsub, Subscriber } from '../../src/daemon/pubsub/pubsub.js';
import { startWatchdog, watchdogChannel, type Clock } from '../../src/daemon/pubsub/watchdog.js';

/** Time that moves only when told to; due timers fire in order, with their async work let through. */
class FakeClock implements Clock {
  private t = 0;
  private timers: Array<{ at: number; fn: () => void; live: boolean }> = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number) {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return { cancel: () => void (timer.live = false) };
  }

  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await new Promise((r) => setImmediate(r));
      const due = this.timers.filter((x) => x.live && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.live = false;
      this.t = due.at;
      due.fn();
    }
    this.t = end;
    await new Promise((r) => setImmediate(r));
  }
}

const minutes = (n: number) => n * 60_000;
const logger = silentLogger();

function tripped(p: Promise<Error>): Promise<Error | undefined> {
  return Promise.race([p, new Promise<undefined>((r) => setImmediate(() => r(undefined)))]);
}

describe('pubsub watchdog', () => {
  it('stays quiet while heartbeats come back', async () => {
    const clock = new FakeClock();
    const ps = createMemoryPubsub();
    const beats: number[] = [];
    await ps.subscribe(watchdogChannel, () => void beats.push(clock.now()));
    const wd = startWatchdog({ pubsub: ps, logger, clock });
    await clock.advance(minutes(20));
    expect(await tripped(wd.timeout)).toBeUndefined();
    // One heartbeat at start, then one every 15 s.
    expect(beats.length).toBe(1 + (20 * 60) / 15);
    await wd.close();
    await ps.close();
  });

  it('trips after five minutes without a heartbeat', async () => {
    const clock = new FakeClock();
    // Publishes succeed but never come back: a wedged LISTEN side.
    const deaf: Publisher & Subscriber = {
      publish: async () => undefined,
      subscribe: async () => async () => undefined,
      subscribeWithErr: async () => async () => undefined,
    };
    const wd = startWatchdog({ pubsub: deaf, logger, clock });
    await clock.advance(minutes(4.9));
    expect(await tripped(wd.timeout)).toBeUndefined();
    await clock.advance(minutes(0.5));
    const err = await tripped(wd.timeout);
    expect(err?.message).toMatch(/no heartbeat on pubsub_watchdog for 30\d s/);
    await wd.close();
  });

  it('retries a failed heartbeat publish instead of failing', async () => {
    const clock = new FakeClock();
    const ps: Pubsub = createMemoryPubsub();
    let attempts = 0;
    const flaky: Publisher & Subscriber = {
      publish: async (event, payload) => {
        attempts++;
        // Our own heartbeats fail for a while…
        if (attempts <= 20) throw new Error('database unavailable');
        await ps.publish(event, payload);
      },
      subscribe: (e, l) => ps.subscribe(e, l),
      subscribeWithErr: (e, l) => ps.subscribeWithErr(e, l),
    };
    const wd = startWatchdog({ pubsub: flaky, logger, clock, retryMs: 1000 });
    // …retried every second, so 20 failures take 20 s and the next attempt succeeds.
    await clock.advance(30_000);
    expect(attempts).toBe(21);
    await clock.advance(minutes(10));
    expect(await tripped(wd.timeout)).toBeUndefined();
    await wd.close();
    await ps.close();
  });
});
