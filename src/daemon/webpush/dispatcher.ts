import { performance } from 'node:perf_hooks';

import { Agent, request, type Dispatcher as UndiciDispatcher } from 'undici';

import type { Logger } from '../observability/logger.js';
import type { WebpushSubscription } from '../store/webpush.js';
import type { DispatchResult, WebpushMetrics } from './metrics.js';
import { inlineEncryptor, type PushEncryptor, type Urgency } from './encrypt.js';
import { endpointProblem, EndpointRefusedError, pushConnector } from './endpoint.js';
import type { VapidTokenCache } from './vapid.js';

/** What a notification shows (DESIGN §5), and how the push service should treat it. */
export interface PushMessage {
  title: string;
  body: string;
  /** Absolute URL a click opens; Declarative Web Push requires one. */
  navigate: string;
  /** Absolute URL of the icon. */
  icon: string;
  /** A newer notification with the same tag replaces the older one on screen. */
  tag?: string;
  /** RFC 8030 Topic (≤ 32 base64url characters): the push service keeps only the newest undelivered one. */
  topic?: string;
  urgency?: Urgency;
}

/**
 * The payload: a Declarative Web Push message (push-api §declarative push message). Safari 18.4+ shows it without
 * running the service worker; elsewhere our service worker reads the same JSON and shows it.
 */
export function declarativePayload(m: PushMessage) {
  return {
    web_push: 8030,
    notification: { title: m.title, body: m.body, navigate: m.navigate, icon: m.icon, ...(m.tag ? { tag: m.tag } : {}) },
  };
}

/** aes128gcm leaves 4096 - 86 (header) - 16 (tag) - 1 (delimiter) bytes for the plaintext. */
export const maxPayloadBytes = 3993;
/** DESIGN §6: a turn's notification is worth showing for two days. */
export const defaultTtlSeconds = 48 * 3600;

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
  /** Dev and tests: http endpoints and loopback or private addresses are dialled too. */
  allowPrivateAddresses?: boolean;
  /** How long a push service keeps an undelivered notification. Default 48 h. */
  ttlSeconds?: number;
  /** Where payloads are encrypted. Default: inline, on the calling thread. */
  encryptor?: PushEncryptor;
  /** TLS options for the agent (the bench's self-signed push service). */
  tls?: { rejectUnauthorized?: boolean };
}

/** A subscription that has not succeeded for this long gets its last_success_at refreshed on the next success. */
const successRefreshMs = 24 * 3600_000;

/**
 * Sends notifications: web-push encrypts each request, one signed VAPID token per origin authorizes it, and our
 * keep-alive agent sends it with a timeout and bounded parallelism. Every endpoint passes the address policy
 * before its send, and every connection the agent opens passes it again on the address it dials.
 */
export class PushDispatcher {
  private readonly agent: Agent;
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly ttlSeconds: number;
  private readonly allowInsecure: boolean;
  private readonly encryptor: PushEncryptor;

  constructor(private readonly opts: DispatcherOptions) {
    this.concurrency = opts.concurrency ?? 32;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.ttlSeconds = opts.ttlSeconds ?? defaultTtlSeconds;
    this.allowInsecure = opts.allowPrivateAddresses ?? false;
    this.encryptor = opts.encryptor ?? inlineEncryptor;
    this.agent = new Agent({ keepAliveTimeout: 60_000, connections: 16, connect: pushConnector({ allowInsecure: this.allowInsecure }, opts.tls) });
  }

  async close(): Promise<void> {
    await this.agent.close();
    await this.encryptor.close();
  }

  /** OS thread ids the dispatcher encrypts on besides the caller's. */
  threadIds(): number[] {
    return this.encryptor.threadIds();
  }

  /**
   * Sends `message` to every subscription, then deletes the dead ones (404/410, 400/403, and endpoints the address
   * policy refuses, which are never dialled: rows stored by a replica with the dev flag, or by hand). Returns the ids deleted
   * so the caller can prune its cache.
   */
  async send(subscriptions: WebpushSubscription[], message: PushMessage): Promise<{ outcomes: SendOutcome[]; deleted: Set<string> }> {
    const outcomes = await this.deliver(subscriptions, message);
    const deleted = new Set(outcomes.filter((o) => o.result === 'gone' || o.result === 'rejected' || o.result === 'refused').map((o) => o.subscription.id));
    const stale = outcomes.filter((o) => o.result === 'success' && Date.now() - o.subscription.lastSuccessAt.getTime() > successRefreshMs);
    try {
      await this.opts.store.deleteSubscriptions([...deleted]);
      await this.opts.store.markSucceeded(stale.map((o) => o.subscription.id));
    } catch (err) {
      this.opts.logger.warn({ err }, 'web push: updating subscriptions after a dispatch failed');
    }
    for (const o of outcomes) {
      if (o.result === 'rejected' || o.result === 'failed' || o.result === 'refused') {
        this.opts.logger.warn({ subscriptionId: o.subscription.id, userId: o.subscription.userId, status: o.status, error: o.error, result: o.result }, 'web push: send failed');
      }
    }
    return { outcomes, deleted };
  }

  /** Sends without touching stored subscriptions (a subscription's test push before it is stored). */
  async deliver(subscriptions: Array<Omit<WebpushSubscription, 'id'> & { id?: string }>, message: PushMessage): Promise<SendOutcome[]> {
    const payload = Buffer.from(JSON.stringify(declarativePayload(message)));
    if (payload.length > maxPayloadBytes) throw new PayloadTooLargeError(`push payload of ${payload.length} bytes exceeds ${maxPayloadBytes}`);
    const started = performance.now();
    const outcomes: SendOutcome[] = new Array<SendOutcome>(subscriptions.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(this.concurrency, subscriptions.length) }, async () => {
        for (let i = next++; i < subscriptions.length; i = next++) outcomes[i] = await this.sendOne(subscriptions[i] as WebpushSubscription, payload, message);
      }),
    );
    this.opts.metrics.duration.observe((performance.now() - started) / 1000);
    return outcomes;
  }

  private async sendOne(sub: WebpushSubscription, payload: Buffer, message: PushMessage): Promise<SendOutcome> {
    let outcome: SendOutcome;
    const problem = endpointProblem(sub.endpoint, this.allowInsecure);
    if (problem) {
      outcome = { subscription: sub, result: 'refused', error: problem };
      this.opts.metrics.dispatch.inc({ result: outcome.result });
      return outcome;
    }
    try {
      const encrypted = await this.encryptor.encrypt({
        endpoint: sub.endpoint,
        authKey: sub.authKey,
        p256dhKey: sub.p256dhKey,
        payload,
        ttlSeconds: this.ttlSeconds,
        urgency: message.urgency ?? 'normal',
        ...(message.topic ? { topic: message.topic } : {}),
      });
      const res = await request(sub.endpoint, {
        method: 'POST',
        headers: { ...encrypted.headers, Authorization: this.opts.tokens.authorization(sub.endpoint) },
        body: encrypted.body,
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
      const refused = err instanceof EndpointRefusedError || (err as { cause?: unknown }).cause instanceof EndpointRefusedError;
      outcome = { subscription: sub, result: refused ? 'refused' : 'failed', error: (err as Error).message };
    }
    this.opts.metrics.dispatch.inc({ result: outcome.result });
    return outcome;
  }
}
