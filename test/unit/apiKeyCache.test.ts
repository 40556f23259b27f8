import { describe, expect, it } from 'vitest';

import { droppedMessages, type ListenerWithErr, type Subscriber } from '../../src/daemon/pubsub/pubsub.js';
import type { APIKeyWithUser } from '../../src/daemon/store/apiKeys.js';
import { APIKeyCache, authInvalidateChannel, revocationPayload, type Revocation } from '../../src/daemon/users/apiKeyCache.js';

const key = (userId: string): APIKeyWithUser => ({
  hashedSecret: Buffer.alloc(32),
  expiresAt: new Date(Date.now() + 3600_000),
  lastUsedAt: null,
  user: { id: userId, username: userId, email: null, isAdmin: false, suspendedAt: null, createdAt: new Date() },
});

function setup(maxEntries?: number) {
  const fetched: string[] = [];
  const release: Array<() => void> = [];
  let hold = false;
  const cache = new APIKeyCache({
    maxEntries,
    fetch: async (id) => {
      fetched.push(id);
      if (hold) await new Promise<void>((r) => release.push(r));
      return key(`user-of-${id}`);
    },
  });
  let deliver!: ListenerWithErr;
  const subscriber = {
    subscribeWithErr: async (event: string, l: ListenerWithErr) => {
      expect(event).toBe(authInvalidateChannel);
      deliver = l;
      return async () => undefined;
    },
  } as unknown as Subscriber;
  const revoked: Revocation[] = [];
  return { cache, fetched, subscriber, revoked, deliver: (p: Buffer | undefined, err?: typeof droppedMessages) => deliver(p, err), holdFetches: () => (hold = true), release };
}

describe('API key cache', () => {
  it('serves a key from memory until a revocation of the key or its user arrives', async () => {
    const s = setup();
    await s.cache.start(s.subscriber, (r) => s.revoked.push(r));
    await s.cache.get('k1');
    await s.cache.get('k1');
    await s.cache.get('k2');
    expect(s.fetched).toEqual(['k1', 'k2']);
    await s.deliver(Buffer.from(revocationPayload({ keyId: 'k1' })));
    await s.cache.get('k1');
    await s.cache.get('k2');
    expect(s.fetched).toEqual(['k1', 'k2', 'k1']);
    await s.deliver(Buffer.from(revocationPayload({ userId: 'user-of-k2' })));
    await s.cache.get('k2');
    expect(s.fetched).toEqual(['k1', 'k2', 'k1', 'k2']);
    expect(s.revoked).toEqual([{ keyId: 'k1' }, { userId: 'user-of-k2' }]);
  });

  it('empties itself on lost messages and tells the listener so', async () => {
    const s = setup();
    await s.cache.start(s.subscriber, (r) => s.revoked.push(r));
    await s.cache.get('k1');
    await s.cache.get('k2');
    await s.deliver(undefined, droppedMessages);
    expect(s.cache.size).toBe(0);
    expect(s.revoked).toEqual(['all']);
  });

  it('does not store a read that raced a revocation', async () => {
    const s = setup();
    await s.cache.start(s.subscriber, () => undefined);
    s.holdFetches();
    const read = s.cache.get('k1');
    await expect.poll(() => s.release.length).toBe(1);
    await s.deliver(Buffer.from(revocationPayload({ keyId: 'k1' })));
    s.release[0]!();
    await read;
    expect(s.cache.size).toBe(0);
  });

  it('stays bounded, dropping the least recently used key', async () => {
    const s = setup(2);
    await s.cache.get('k1');
    await s.cache.get('k2');
    await s.cache.get('k1');
    await s.cache.get('k3');
    expect(s.cache.size).toBe(2);
    await s.cache.get('k1');
    await s.cache.get('k2');
    expect(s.fetched).toEqual(['k1', 'k2', 'k3', 'k2']);
  });
});
