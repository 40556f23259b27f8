import { Counter, Histogram, type Registry } from 'prom-client';

export type DispatchResult = 'success' | 'gone' | 'rejected' | 'refused' | 'failed';

/** Why a push was not sent: the owner was watching the chat. */
export type SuppressReason = 'owner_watching';

export interface WebpushMetrics {
  dispatch: Counter<'result'>;
  cache: Counter<'result'>;
  suppressed: Counter<'reason'>;
  duration: Histogram;
}

export function createWebpushMetrics(registry: Registry | undefined): WebpushMetrics {
  const registers = registry ? [registry] : [];
  return {
    dispatch: new Counter({
      name: 'coderlite_webpush_dispatch_total',
      help: 'Push sends by result: success, gone (404/410, deleted), rejected (400/403, deleted), refused (the address policy refused the endpoint: never dialled, deleted), failed (kept).',
      labelNames: ['result'],
      registers,
    }),
    cache: new Counter({ name: 'coderlite_webpush_subscription_cache_total', help: 'Subscription cache lookups.', labelNames: ['result'], registers }),
    suppressed: new Counter({
      name: 'coderlite_webpush_suppressed_total',
      help: 'Pushes after a turn not sent, by reason: owner_watching (the owner had the chat visible and focused).',
      labelNames: ['reason'],
      registers,
    }),
    duration: new Histogram({
      name: 'coderlite_webpush_dispatch_duration_seconds',
      help: "Time to deliver one notification to all of a user's subscriptions.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}
