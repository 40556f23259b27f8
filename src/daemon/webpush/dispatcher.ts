import { performance } from 'node:perf_hooks';

import { Agent, request, type Dispatcher as UndiciDispatcher } from 'undici';
import webpush from 'web-push';

import type { Logger } from '../observability/logger.js';
import type { WebpushSubscription } from '../store/webpush.js';
import type { DispatchResult, WebpushMetrics } from './metrics.js';
import { safeLookup } from './endpoint.js';
import type { VapidTokenCache } from './vapid.js';

/** What a notification shows (DESIGN §5). */
export interface PushMessage {
  title: string;
  body: string;
  icon: string;
  data: { url: string };
}

/** aes128gcm leaves 4096 - 86 (header) - 16 (tag) - 1 (delimiter) bytes for the plaintext. */
export const maxPayloadBytes = 3993;
const ttlSeconds = 48 * 3600;

export class PayloadTooLargeError extends Error {}

export interface SendOutcome {
  subscription: WebpushSubscription;
  result: DispatchResult;
  status?: number;
  error?: string;
}

export interface DispatcherStore {
  deleteSubscriptions(ids: string[]): Promise<void>;
  markSucceeded(ids: string[]): Promise<void>;
}

export interface DispatcherOptions {
  tokens: Pick<VapidTokenCache, 'authorization'>;
  store: DispatcherStore;
  metrics: WebpushMetrics;
  logger: Logger;
  concurrency?: number;
  timeoutMs?: number;
  /** Dev and tests: dial loopback and private addresses too. */
  allowPrivateAddresses?: boolean;
  /** TLS options for the agent (the bench's self-signed push service). */
  tls?: { rejectUnauthorized?: boolean };
}

/** A subscription that has not succeeded for this long gets its last_success_at refreshed on the next success. */
const successRefreshMs = 24 * 3600_000;

/**
 * Sends notifications: web-push encrypts each request, one signed VAPID token per origin authorizes it, and our
 * keep-alive agent sends it with a timeout, bounded parallelism and dialing that refuses private addresses.
 */
export class PushDispatcher {
  private readonly agent: Agent;
  private readonly concurrency: number;
  private readonly timeoutMs: number;

  constructor(private readonly opts: DispatcherOptions) {
    this.concurrency = opts.concurrency ?? 32;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.agent = new Agent({
      keepAliveTimeout: 60_000,
      connections: 16,
      connect: { ...(opts.allowPrivateAddresses ? {} : { lookup: safeLookup }), ...opts.tls },
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /**
   * Sends `message` to every subscription, then deletes the dead ones (404/410 and 400/403). Returns the ids deleted
   * so the caller can prune its cache.
   */
  async send(subscriptions: WebpushSubscription[], message: PushMessage): Promise<{ outcomes: SendOutcome[]; deleted: Set<string> }> {
    const outcomes = await this.deliver(subscriptions, message);
    const deleted = new Set(outcomes.filter((o) => o.result === 'gone' || o.result === 'rejected').map((o) => o.subscription.id));
    const stale = outcomes.filter((o) => o.result === 'success' && Date.now() - o.subscription.lastSuccessAt.getTime() > successRefreshMs);
    try {
      await this.opts.store.deleteSubscriptions([...deleted]);
      await this.opts.store.markSucceeded(stale.map((o) => o.subscription.id));
    } catch (err) {
      this.opts.logger.warn({ err }, 'web push: updating subscriptions after a dispatch failed');
    }
    for (const o of outcomes) {
      if (o.result === 'rejected' || o.result === 'failed') {
        this.opts.logger.warn({ subscriptionId: o.subscription.id, userId: o.subscription.userId, status: o.status, error: o.error, result: o.result }, 'web push: send failed');
      }
    }
    return { outcomes, deleted };
  }

  /** Sends without touching stored subscriptions (a subscription's test push before it is stored). */
  async deliver(subscriptions: Array<Omit<WebpushSubscription, 'id'> & { id?: string }>, message: PushMessage): Promise<SendOutcome[]> {
    const payload = Buffer.from(JSON.stringify(message));
    if (payload.length > maxPayloadBytes) throw new PayloadTooLargeError(`push payload of ${payload.length} bytes exceeds ${maxPayloadBytes}`);
    const started = performance.now();
    const outcomes: SendOutcome[] = new Array<SendOutcome>(subscriptions.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(this.concurrency, subscriptions.length) }, async () => {
        for (let i = next++; i < subscriptions.length; i = next++) outcomes[i] = await this.sendOne(subscriptions[i] as WebpushSubscription, payload);
      }),
    );
    this.opts.metrics.duration.observe((performance.now() - started) / 1000);
    return outcomes;
  }

  private async sendOne(sub: WebpushSubscription, payload: Buffer): Promise<SendOutcome> {
    let outcome: SendOutcome;
    try {
      const details = webpush.generateRequestDetails({ endpoint: sub.endpoint, keys: { auth: sub.authKey, p256dh: sub.p256dhKey } }, payload, {
        TTL: ttlSeconds,
        urgency: 'normal',
        vapidDetails: null as never,
      });
      const headers = { ...(details.headers as Record<string, string | number>), Authorization: this.opts.tokens.authorization(sub.endpoint) };
      const res = await request(details.endpoint, {
        method: 'POST',
        headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)])),
        body: details.body as Buffer,
        dispatcher: this.agent as UndiciDispatcher,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const text = await res.body.text().catch(() => '');
      const status = res.statusCode;
      if (status >= 200 && status < 300) outcome = { subscription: sub, result: 'success', status };
      else if (status === 404 || status === 410) outcome = { subscription: sub, result: 'gone', status };
      else if (status === 400 || status === 403) outcome = { subscription: sub, result: 'rejected', status, error: text.slice(0, 200) };
      else outcome = { subscription: sub, result: 'failed', status, error: text.slice(0, 200) };
    } catch (err) {
      outcome = { subscription: sub, result: 'failed', error: (err as Error).message };
    }
    this.opts.metrics.dispatch.inc({ result: outcome.result });
    return outcome;
  }
}
