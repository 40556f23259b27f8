import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import type { Logger } from '../observability/logger.js';
import type { PubsubMetrics } from './metrics.js';
import type { Cancel, Publisher, Subscriber } from './pubsub.js';

export interface LatencyProbeOptions {
  pubsub: Publisher & Subscriber;
  metrics: PubsubMetrics;
  logger: Logger;
  /** Between probes; Coder measured on every scrape, which let a scraper put load on the database. */
  intervalMs?: number;
  /** A probe not received within this is counted as an error. */
  timeoutMs?: number;
}

export interface LatencyProbe {
  stop(): Promise<void>;
}

/**
 * Publishes a 36-byte UUID on a private channel every interval and times the publish (send) and the round trip to
 * its own subscription (receive). Runs in the background; its timers never keep the process alive.
 */
export function startLatencyProbe(opts: LatencyProbeOptions): LatencyProbe {
  const { pubsub, metrics, logger } = opts;
  const intervalMs = opts.intervalMs ?? 10_000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const channel = `latency-measure:${randomUUID()}`;
  const waiting = new Map<string, { received(): void; abort(err: Error): void }>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let cancel: Promise<Cancel> | undefined;
  let running: Promise<void> = Promise.resolve();

  async function probe(): Promise<void> {
    cancel ??= pubsub.subscribe(channel, (payload) => waiting.get(payload.toString())?.received());
    const ping = randomUUID();
    let timeout: NodeJS.Timeout | undefined;
    try {
      await cancel;
      const t0 = performance.now();
      const received = new Promise<number>((resolve, reject) => {
        waiting.set(ping, { received: () => resolve(performance.now()), abort: reject });
        timeout = setTimeout(() => reject(new Error(`no probe message within ${timeoutMs} ms`)), timeoutMs);
        timeout.unref();
      });
      received.catch(() => undefined);
      await pubsub.publish(channel, ping);
      const sent = performance.now();
      const got = await received;
      metrics.sendLatency.observe((sent - t0) / 1000);
      metrics.receiveLatency.observe((got - t0) / 1000);
    } catch (err) {
      if (stopped) return;
      metrics.latencyMeasureErrs.inc();
      logger.warn({ err }, 'pubsub latency probe failed');
    } finally {
      clearTimeout(timeout);
      waiting.delete(ping);
      if (!stopped) metrics.latencyMeasures.inc();
    }
  }

  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = probe().finally(() => schedule(intervalMs));
    }, ms);
    timer.unref();
  };
  // The first figure comes right away, so /metrics has latency soon after start.
  schedule(0);

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      for (const w of waiting.values()) w.abort(new Error('pubsub latency probe stopped'));
      await running;
      await (await cancel?.catch(() => undefined))?.();
    },
  };
}
