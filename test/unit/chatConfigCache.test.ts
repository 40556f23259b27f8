import { describe, expect, it } from 'vitest';

import { ConfigCache, configChangeChannel, ModelResolutionError } from '../../src/daemon/chat/configCache.js';
import { silentLogger } from '../../src/daemon/observability/logger.js';
import type { Database } from '../../src/daemon/postgres/pool.js';
import { createMemoryPubsub } from '../../src/daemon/pubsub/memory.js';

/** A fake database answering the two config reads and counting them. */
function fakeDb() {
  const reads: string[] = [];
  let providerEnabled = true;
  const db = {
    query: async (q: { name: string }) => {
      reads.push(q.name);
      if (q.name === 'getDefaultChatModelConfig') return { rows: [{ id: 'm1', provider_id: 'p1', model: 'gpt', is_default: true, enabled: true, display_name: null }] };
      if (q.name === 'getEnabledChatProviders') return { rows: providerEnabled ? [{ id: 'p1', name: 'openai-compat', type: 'openai-compat', base_url: 'http://llm/v1', enabled: true }] : [] };
      return { rows: [] };
    },
  } as unknown as Database;
  return { db, reads, disable: () => (providerEnabled = false) };
}

describe('ConfigCache', () => {
  it('reads config once per TTL, again after a chat:config_change from any replica', async () => {
    let now = 0;
    const f = fakeDb();
    const pubsub = createMemoryPubsub({ logger: silentLogger() });
    const cache = new ConfigCache({ db: f.db, apiKeys: new Map([['openai-compat', 'sk-test']]), now: () => now });
    await cache.start(pubsub);
    const first = await cache.resolve(null);
    expect(first).toEqual({ providerId: 'p1', providerType: 'openai-compat', modelConfigId: 'm1', model: 'gpt', baseUrl: 'http://llm/v1', apiKey: 'sk-test' });
    await cache.resolve(null);
    now += 9_999;
    await cache.resolve(null);
    expect(f.reads).toHaveLength(2);
    now += 2;
    await cache.resolve(null);
    expect(f.reads).toHaveLength(4);

    f.disable();
    await pubsub.publish(configChangeChannel, '');
    await expect.poll(() => cache.resolve(null).then(() => 'resolved', (err: unknown) => (err instanceof ModelResolutionError ? 'disabled' : 'other'))).toBe('disabled');
    await cache.close();
    await pubsub.close();
  });

  it('reads every time when disabled, as Coder does', async () => {
    const f = fakeDb();
    const cache = new ConfigCache({ db: f.db, apiKeys: new Map(), disabled: true });
    for (let i = 0; i < 3; i++) await cache.resolve(null);
    expect(f.reads).toEqual(Array(3).fill(['getDefaultChatModelConfig', 'getEnabledChatProviders']).flat());
  });
});
