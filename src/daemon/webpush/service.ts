import type { Logger } from '../observability/logger.js';
import type { Database } from '../postgres/pool.js';
import { deleteStaleWebpushSubscriptions, deleteWebpushSubscriptionByEndpoint, upsertWebpushSubscription } from '../store/webpush.js';
import type { PushDispatcher, PushMessage, SendOutcome } from './dispatcher.js';
import type { SubscriptionCache } from './subscriptionCache.js';

export class SubscriptionRejectedError extends Error {}

const sweepEveryMs = 24 * 3600_000;
const staleAfterDays = 60;

/** A user's push subscriptions and the pushes sent to them. */
export class WebpushService {
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(
    private readonly db: Database,
    private readonly cache: SubscriptionCache,
    private readonly dispatcher: PushDispatcher,
    private readonly logger: Logger,
  ) {
    this.sweepTimer = setInterval(() => void this.sweep(), sweepEveryMs).unref();
  }

  close(): void {
    clearInterval(this.sweepTimer);
  }

  /** Sends to all of the user's subscriptions; dead ones are deleted and pruned from the cache. */
  async dispatchToUser(userId: string, message: PushMessage): Promise<SendOutcome[]> {
    const subs = await this.cache.get(userId);
    if (subs.length === 0) return [];
    const { outcomes, deleted } = await this.dispatcher.send(subs, message);
    if (deleted.size > 0) this.cache.prune(userId, deleted);
    return outcomes;
  }

  /** Proves the subscription works with a test push, then stores it. */
  async subscribe(userId: string, sub: { endpoint: string; authKey: string; p256dhKey: string }, test: PushMessage): Promise<void> {
    const [outcome] = await this.dispatcher.deliver([{ userId, ...sub, lastSuccessAt: new Date() }], test);
    if (outcome!.result === 'refused') throw new SubscriptionRejectedError(`the endpoint is not dialled: ${outcome!.error}`);
    if (outcome!.result !== 'success') {
      throw new SubscriptionRejectedError(`the push service refused a test notification (${outcome!.status ?? outcome!.error ?? 'no answer'})`);
    }
    await upsertWebpushSubscription(this.db, userId, sub.endpoint, sub.authKey, sub.p256dhKey);
    await this.cache.invalidateUser(userId);
  }

  /** False when the user had no subscription with this endpoint. */
  async unsubscribe(userId: string, endpoint: string): Promise<boolean> {
    const removed = await deleteWebpushSubscriptionByEndpoint(this.db, userId, endpoint);
    if (removed) await this.cache.invalidateUser(userId);
    return removed;
  }

  private async sweep(): Promise<void> {
    try {
      const users = await deleteStaleWebpushSubscriptions(this.db, staleAfterDays);
      for (const u of users) await this.cache.invalidateUser(u);
      if (users.length > 0) this.logger.info({ users: users.length }, 'web push: swept subscriptions without a success in 60 days');
    } catch (err) {
      this.logger.warn({ err }, 'web push: sweeping stale subscriptions failed');
    }
  }
}
