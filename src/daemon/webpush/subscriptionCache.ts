import type { Publisher, Subscriber, Cancel } from '../pubsub/pubsub.js';
import type { WebpushSubscription } from '../store/webpush.js';
import type { WebpushMetrics } from './metrics.js';

export const invalidateChannel = 'webpush:invalidate';

export interface SubscriptionCacheOptions {
  fetch: (userId: string) => Promise<WebpushSubscription[]>;
  metrics: Pick<WebpushMetrics, 'cache'>;
  ttlMs?: number;
  /** Every lookup reads the database (scaletest comparison). */
  disabled?: boolean;
  now?: () => number;
}

interface Entry {
  subs: WebpushSubscription[];
  expires: number;
}

/**
 * Per-user subscriptions for 3 minutes, one fetch in flight per user. `invalidateUser` bumps the user's generation,
 * so a fetch that started before a subscribe or unsubscribe can never store its stale result; other replicas hear
 * of it through pubsub.
 */
export class SubscriptionCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, { generation: number; promise: Promise<WebpushSubscription[]> }>();
  private readonly generations = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly now: () => number;
  private publisher?: Publisher;
  private cancel?: Cancel;

  constructor(private readonly opts: SubscriptionCacheOptions) {
    this.ttlMs = opts.ttlMs ?? 3 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  async start(pubsub: Publisher & Subscriber): Promise<void> {
    this.publisher = pubsub;
    this.cancel = await pubsub.subscribeWithErr(invalidateChannel, (payload, err) => {
      // Lost invalidations: forget everything rather than serve what may be stale.
      if (err || !payload) this.clear();
      else this.invalidateLocal(payload.toString());
    });
  }

  async close(): Promise<void> {
    await this.cancel?.();
  }

  async get(userId: string): Promise<WebpushSubscription[]> {
    if (this.opts.disabled) {
      this.opts.metrics.cache.inc({ result: 'miss' });
      return this.opts.fetch(userId);
    }
    const entry = this.entries.get(userId);
    if (entry && entry.expires > this.now()) {
      this.opts.metrics.cache.inc({ result: 'hit' });
      return entry.subs;
    }
    this.opts.metrics.cache.inc({ result: 'miss' });
    const generation = this.generations.get(userId) ?? 0;
    const running = this.inflight.get(userId);
    if (running && running.generation === generation) return running.promise;
    const promise = this.opts.fetch(userId).then((subs) => {
      if ((this.generations.get(userId) ?? 0) === generation) this.entries.set(userId, { subs, expires: this.now() + this.ttlMs });
      return subs;
    });
    const flight = { generation, promise };
    this.inflight.set(userId, flight);
    void promise.then(
      () => this.inflight.get(userId) === flight && this.inflight.delete(userId),
      () => this.inflight.get(userId) === flight && this.inflight.delete(userId),
    );
    return promise;
  }

  /** After a subscribe or unsubscribe: here at once, on other replicas through pubsub. */
  async invalidateUser(userId: string): Promise<void> {
    this.invalidateLocal(userId);
    await this.publisher?.publish(invalidateChannel, userId);
  }

  /** Drops deleted subscriptions without a re-read. */
  prune(userId: string, ids: Set<string>): void {
    const entry = this.entries.get(userId);
    if (entry) entry.subs = entry.subs.filter((s) => !ids.has(s.id));
  }

  private invalidateLocal(userId: string): void {
    this.generations.set(userId, (this.generations.get(userId) ?? 0) + 1);
    this.entries.delete(userId);
  }

  /** Forgets every user (lost invalidations, a VAPID rotation that deleted all subscriptions). */
  clear(): void {
    for (const userId of new Set([...this.entries.keys(), ...this.inflight.keys()])) this.invalidateLocal(userId);
  }
}
