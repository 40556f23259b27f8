import type { Logger } from '../observability/logger.js';
import type { Cancel, Publisher, Subscriber } from './pubsub.js';

/** The channel every replica heartbeats on; any replica's heartbeat proves the pubsub path works end to end. */
export const watchdogChannel = 'pubsub_watchdog';

/** Time and timers, injectable so tests can run five minutes in a millisecond. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): { cancel(): void };
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    // The watchdog guards a running daemon; it must never be the thing that keeps a process alive.
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

export interface WatchdogOptions {
  pubsub: Publisher & Subscriber;
  logger: Logger;
  clock?: Clock;
  /** Heartbeat period. Default 15 s. */
  periodMs?: number;
  /** Silence that trips the watchdog. Default 5 min. */
  timeoutMs?: number;
  /** Delay before retrying a failed heartbeat publish. Default 1 s. */
  retryMs?: number;
}

export interface Watchdog {
  /** Resolves when no heartbeat arrived for the timeout: the pubsub is wedged and the process should restart. */
  readonly timeout: Promise<Error>;
  close(): Promise<void>;
}

/**
 * Publishes a heartbeat every period and trips when none (from any replica) arrived for the timeout. A failed
 * publish is logged and retried, never fatal by itself: only the silence is.
 */
export function startWatchdog(opts: WatchdogOptions): Watchdog {
  const { pubsub, logger } = opts;
  const clock = opts.clock ?? realClock;
  const periodMs = opts.periodMs ?? 15_000;
  const timeoutMs = opts.timeoutMs ?? 5 * 60_000;
  const retryMs = opts.retryMs ?? 1000;
  let lastHeard = clock.now();
  let stopped = false;
  let timer: { cancel(): void } | undefined;
  let trip!: (err: Error) => void;
  const timeout = new Promise<Error>((resolve) => (trip = resolve));

  const subscription: Promise<Cancel | undefined> = pubsub
    .subscribe(watchdogChannel, () => {
      lastHeard = clock.now();
    })
    .catch((err: unknown) => {
      logger.error({ err }, 'pubsub watchdog cannot subscribe; it will trip unless this recovers');
      return undefined;
    });

  function schedule(ms: number): void {
    if (!stopped) timer = clock.setTimeout(() => void beat(), ms);
  }

  async function beat(): Promise<void> {
    const silentFor = clock.now() - lastHeard;
    if (silentFor >= timeoutMs) {
      stopped = true;
      const err = new Error(`pubsub watchdog: no heartbeat on ${watchdogChannel} for ${Math.round(silentFor / 1000)} s; the pubsub is not delivering`);
      logger.error({ silentForMs: silentFor }, err.message);
      trip(err);
      return;
    }
    try {
      await pubsub.publish(watchdogChannel, '');
      schedule(periodMs);
    } catch (err) {
      if (stopped) return;
      logger.warn({ err, retryInMs: retryMs }, 'pubsub watchdog heartbeat failed; retrying');
      schedule(Math.min(retryMs, periodMs));
    }
  }

  schedule(0);
  let closing: Promise<void> | undefined;
  return {
    timeout,
    close() {
      return (closing ??= (async () => {
        stopped = true;
        timer?.cancel();
        await (await subscription)?.();
      })());
    },
  };
}
