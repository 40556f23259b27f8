import { createHash } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import type { Queryable } from '../../src/daemon/postgres/pool.js';
import type { APIKeyWithUser } from '../../src/daemon/store/apiKeys.js';
import { APIKeyCache } from '../../src/daemon/users/apiKeyCache.js';
import { Authenticator } from '../../src/daemon/users/service.js';

const secret = 'A'.repeat(32);
const token = `abcdefghij-${secret}`;

function setup(key: Partial<APIKeyWithUser>) {
  let clock = 1_000_000;
  const fetches: string[] = [];
  const touches: unknown[][] = [];
  const cache = new APIKeyCache({
    fetch: async (id) => {
      fetches.push(id);
      return {
        hashedSecret: createHash('sha256').update(secret).digest(),
        expiresAt: new Date(clock + 60 * 60_000),
        lastUsedAt: null,
        user: { id: 'u1', username: 'u', email: null, isAdmin: false, suspendedAt: null, createdAt: new Date(0) },
        ...key,
      };
    },
  });
  const db = { query: async (_q: unknown, values: unknown[]) => (touches.push(values), { rows: [], rowCount: 1 }) } as unknown as Queryable;
  const auth = new Authenticator({ db, cache, logger: silentLogger(), now: () => clock });
  return { auth, fetches, touches, advance: (ms: number) => (clock += ms), at: () => clock };
}

describe('Authenticator', () => {
  it("checks expiry against the cached key on every request, without reading it again", async () => {
    const s = setup({ expiresAt: new Date(1_000_000 + 10_000) });
    expect((await s.auth.authenticate(token)).ok).toBe(true);
    s.advance(9_999);
    expect((await s.auth.authenticate(token)).ok).toBe(true);
    s.advance(1);
    expect(await s.auth.authenticate(token)).toEqual({ ok: false, reason: 'expired' });
    expect(s.fetches).toEqual(['abcdefghij']);
  });

  it('records a use at most once a minute per key', async () => {
    const s = setup({});
    await s.auth.authenticate(token);
    // Recorded off the request's path, in the next batch of touches.
    await expect.poll(() => s.touches).toHaveLength(1);
    expect(s.touches[0]![0]).toEqual(['abcdefghij']);
    s.advance(30_000);
    await s.auth.authenticate(token);
    s.advance(29_999);
    await s.auth.authenticate(token);
    s.advance(1);
    await s.auth.authenticate(token);
    // The third request, a minute after the first, records the second use; the two between recorded none.
    await expect.poll(() => s.touches).toHaveLength(2);
  });

  it('refuses a wrong secret, a malformed token and a suspended user', async () => {
    expect(await setup({}).auth.authenticate(`abcdefghij-${'B'.repeat(32)}`)).toEqual({ ok: false, reason: 'invalid' });
    expect(await setup({}).auth.authenticate('nonsense')).toEqual({ ok: false, reason: 'invalid' });
    const suspended = setup({ user: { id: 'u1', username: 'u', email: null, isAdmin: false, suspendedAt: new Date(), createdAt: new Date(0) } });
    expect(await suspended.auth.authenticate(token)).toEqual({ ok: false, reason: 'suspended' });
  });
});
