import { describe, expect, it } from 'vitest';

import { createMetricsRegistry } from '../../src/daemon/observability/metrics.js';
import type { WebpushSubscription } from '../../src/daemon/store/webpush.js';
import { createWebpushMetrics } from '../../src/daemon/webpush/metrics.js';
import { SubscriptionCache } from '../../src/daemon/webpush/subscriptionCache.js';
import { summarize, turnMessage } from '../../src/daemon/webpush/turnPush.js';
import { normalizeSubject, VapidSubjectError } from '../../src/daemon/webpush/vapid.js';

const sub = (id: string): WebpushSubscription => ({ id, userId: 'u', endpoint: `https://push.example/${id}`, authKey: 'a', p256dhKey: 'p', lastSuccessAt: new Date() });

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('SubscriptionCache', () => {
  it('does not store a fetch that an invalidation overtook; the next lookup re-reads', async () => {
    const fetches: Array<ReturnType<typeof deferred<WebpushSubscription[]>>> = [];
    const cache = new SubscriptionCache({
      fetch: () => {
        const d = deferred<WebpushSubscription[]>();
        fetches.push(d);
        return d.promise;
      },
      metrics: createWebpushMetrics(createMetricsRegistry({ defaultMetrics: false })),
    });
    const first = cache.get('u');
    await cache.invalidateUser('u');
    fetches[0]!.resolve([sub('old')]);
    expect((await first).map((s) => s.id)).toEqual(['old']);
    const second = cache.get('u');
    expect(fetches).toHaveLength(2);
    fetches[1]!.resolve([sub('new')]);
    expect((await second).map((s) => s.id)).toEqual(['new']);
    expect((await cache.get('u')).map((s) => s.id)).toEqual(['new']);
    expect(fetches).toHaveLength(2);
  });

  it('shares one fetch in flight per user and expires after the TTL', async () => {
    let now = 0;
    let reads = 0;
    const cache = new SubscriptionCache({
      fetch: async () => {
        reads++;
        return [sub(String(reads))];
      },
      metrics: createWebpushMetrics(createMetricsRegistry({ defaultMetrics: false })),
      now: () => now,
    });
    await Promise.all([cache.get('u'), cache.get('u'), cache.get('u')]);
    expect(reads).toBe(1);
    now += 3 * 60_000 - 1;
    await cache.get('u');
    expect(reads).toBe(1);
    now += 2;
    await cache.get('u');
    expect(reads).toBe(2);
  });
});

describe('push content', () => {
  it('summarizes to the first sentence within 100 characters, with fallbacks', () => {
    expect(summarize('Done. Then more.')).toBe('Done.');
    expect(summarize('x'.repeat(150))).toHaveLength(100);
    expect(summarize('   ')).toBeUndefined();
    const model = { providerId: 'p', providerType: 'fake' as const, modelConfigId: 'm', model: 'x' };
    const base = 'https://coder.example.com/';
    const chatId = '5b1f2c9e-0d7a-4f43-9a51-3c2f1e8b7d60';
    expect(turnMessage({ chatId, ownerId: 'o', title: 'T', outcome: 'waiting', model }, base)).toMatchObject({ body: 'Agent has finished running.', urgency: 'normal' });
    expect(turnMessage({ chatId, ownerId: 'o', title: 'T', outcome: 'error', model }, base).body).toBe('Agent encountered an error.');
    expect(turnMessage({ chatId, ownerId: 'o', title: 'T', outcome: 'error', lastError: 'boom', model }, base)).toEqual({
      title: 'T',
      body: 'boom',
      navigate: `https://coder.example.com/chats/${chatId}`,
      icon: 'https://coder.example.com/icon.png',
      tag: chatId,
      topic: '5b1f2c9e0d7a4f439a513c2f1e8b7d60',
      urgency: 'high',
    });
  });

  it('normalizes the VAPID subject without double prefixes and refuses localhost', () => {
    expect(normalizeSubject('ops@example.com')).toBe('mailto:ops@example.com');
    expect(normalizeSubject('mailto:ops@example.com')).toBe('mailto:ops@example.com');
    expect(normalizeSubject('mailto:mailto:ops@example.com')).toBe('mailto:ops@example.com');
    expect(normalizeSubject('https://coder.example.com')).toBe('https://coder.example.com');
    for (const bad of ['https://localhost:3000', 'me@localhost', 'http://example.com', 'nonsense']) expect(() => normalizeSubject(bad), bad).toThrow(VapidSubjectError);
  });
});
