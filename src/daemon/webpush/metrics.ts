import { Counter, Histogram, type Registry } from 'prom-client';

export type DispatchResult = 'success' | 'gone' | 'rejected' | 'failed';

export interface WebpushMetrics {
  dispatch: Counter<'result'>;
  cache: Counter<'result'>;
  duration: Histogram;
}

export function createWebpushMetrics(registry: Registry | undefined): WebpushMetrics {
  const registers = registry ? [registry] : [];
  return {
    dispatch: new Counter({
      name: 'coderlite_webpush_dispatch_total',
      help: 'Push sends by result: success, gone (404/410, deleted), rejected (400/403, deleted), failed (kept).',
      labelNames: ['result'],
      registers,
    }),
    cache: new Counter({ name: 'coderlite_webpush_subscription_cache_total', help: 'Subscription cache lookups.', labelNames: ['result'], registers }),
    duration: new Histogram({
      name: 'coderlite_webpush_dispatch_duration_seconds',
      help: "Time to deliver one notification to all of a user's subscriptions.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}
