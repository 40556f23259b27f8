import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';

import { namedQuery } from '../../src/daemon/postgres/pool.js';
import { touchAPIKeys } from '../../src/daemon/store/apiKeys.js';
import { createUserWithToken } from '../../src/daemon/users/service.js';
import { chatApi, openStream } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase } from '../helpers/db.js';
import { metricValue } from '../helpers/metrics.js';

type Api = ReturnType<typeof chatApi>;

/** Opens the caller's chat-list socket and resolves once it is listening (its first, empty frame). */
function openWatch(baseUrl: string, token: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/v2/chats/watch`, { headers: { authorization: `Bearer ${token}` } });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.once('message', () => resolve({ ws, closed }));
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on('error', reject);
  });
}

describe('users and tokens', () => {
  it('makes the first user of an empty database an admin, and only admins manage other users', async () => {
    const d = await startTestDaemon();
    const admin = await createTestUser(d, 'root');
    const bob = await createTestUser(d, 'bob');
    expect(admin.user.isAdmin).toBe(true);
    expect(bob.user.isAdmin).toBe(false);
    const asAdmin: Api = chatApi(d.url, admin.token);
    const asBob: Api = chatApi(d.url, bob.token);

    expect((await asBob.call('GET', '/api/v2/users')).status).toBe(403);
    expect((await asBob.call('GET', '/api/v2/users/root')).status).toBe(403);
    expect((await asBob.call('GET', `/api/v2/users/${admin.user.id}/keys/tokens`)).status).toBe(403);
    expect((await asBob.call('POST', '/api/v2/users', { username: 'carol' })).status).toBe(403);
    expect((await asBob.call('DELETE', '/api/v2/users/root')).status).toBe(403);
    expect((await asBob.call('GET', '/api/v2/users/me')).body).toMatchObject({ username: 'bob', is_admin: false, status: 'active' });

    const list = await asAdmin.call('GET', '/api/v2/users');
    expect(list.body.users.map((u: { username: string }) => u.username)).toEqual(['bob', 'root']);
    const carol = await asAdmin.call('POST', '/api/v2/users', { username: 'carol', admin: true });
    expect(carol.status).toBe(201);
    expect(carol.body).toMatchObject({ username: 'carol', is_admin: true });
    expect((await asAdmin.call('POST', '/api/v2/users', { username: 'carol' })).status).toBe(409);
    expect((await asAdmin.call('POST', '/api/v2/users', { username: 'no spaces' })).status).toBe(400);
    expect((await asAdmin.call('GET', '/api/v2/users/nobody')).status).toBe(404);
    // An admin makes a token for bob; bob sees it among his own.
    const made = await asAdmin.call('POST', '/api/v2/users/bob/keys/tokens', { token_name: 'ci' });
    expect(made.status).toBe(201);
    const mine = await asBob.call('GET', '/api/v2/users/me/keys/tokens');
    expect(mine.body.tokens.map((t: { name: string }) => t.name).sort()).toEqual(['ci', 'first']);
    expect((await asAdmin.call('DELETE', '/api/v2/users/me')).status).toBe(409);
  });

  it('creates, lists and revokes own tokens; a revoked or expired token is refused', async () => {
    const d = await startTestDaemon();
    const { token } = await createTestUser(d, 'alice');
    const api = chatApi(d.url, token);
    const created = await api.call('POST', '/api/v2/users/me/keys/tokens', { token_name: 'laptop', lifetime_seconds: 3600 });
    expect(created.status).toBe(201);
    const { id, key, expires_at: expiresAt } = created.body as { id: string; key: string; expires_at: string };
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(3600_000);
    expect((await api.call('POST', '/api/v2/users/me/keys/tokens', { token_name: 'laptop' })).status).toBe(409);
    expect((await api.call('POST', '/api/v2/users/me/keys/tokens', { lifetime_seconds: 400 * 86400 })).status).toBe(400);
    const laptop = chatApi(d.url, key);
    expect((await laptop.call('GET', '/api/v2/users/me')).status).toBe(200);
    const listed = (await api.call('GET', '/api/v2/users/me/keys/tokens')).body.tokens as Array<Record<string, unknown>>;
    expect(listed.find((t) => t.id === id)).toMatchObject({ name: 'laptop', expires_at: expiresAt });
    expect(JSON.stringify(listed)).not.toContain(key.slice(key.indexOf('-') + 1));

    expect((await api.call('DELETE', `/api/v2/users/me/keys/${id}`)).status).toBe(204);
    expect((await laptop.call('GET', '/api/v2/users/me')).status).toBe(401);
    expect((await api.call('DELETE', `/api/v2/users/me/keys/${id}`)).status).toBe(404);

    // An expired token is refused (test/unit/authenticator.test.ts proves it against the cached expiry, with a clock).
    const short = await api.call('POST', '/api/v2/users/me/keys/tokens', { token_name: 'short', lifetime_seconds: 3600 });
    await d.db.query(namedQuery('testExpireKey', `UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`), [short.body.id]);
    expect(await chatApi(d.url, short.body.key as string).call('GET', '/api/v2/users/me')).toMatchObject({ status: 401, body: { message: 'invalid or expired API token' } });
  });

  it('records last use at most once a minute, not on every request', async () => {
    const d = await startTestDaemon();
    const { user, token } = await createTestUser(d, 'dora');
    const api = chatApi(d.url, token);
    const touches = async () => (await metricValue(d.registry, 'coderlite_db_queries_total', { query: 'touchAPIKeys' })) || 0;
    const before = await touches();
    for (let i = 0; i < 5; i++) expect((await api.call('GET', '/api/v2/users/me')).status).toBe(200);
    await expect.poll(async () => (await d.auth.admin.listTokens(user))[0]!.lastUsedAt, { timeout: 10_000 }).not.toBeNull();
    expect((await touches()) - before).toBe(1);
    // The statement itself refuses a second write within the minute (replicas racing).
    const lastUsed = async () => ((await api.call('GET', '/api/v2/users/me/keys/tokens')).body.tokens as Array<{ last_used_at: string }>)[0]!.last_used_at;
    const first = await lastUsed();
    expect(first).not.toBeNull();
    await touchAPIKeys(d.db, [token.slice(0, 10)], 60);
    expect(await lastUsed()).toBe(first);
  });

  it('records many keys in one statement, skipping a key another replica is recording', async () => {
    const d = await startTestDaemon();
    const [a, b] = [await createTestUser(d, 'ann'), await createTestUser(d, 'ben')];
    const ids = [a.token.slice(0, 10), b.token.slice(0, 10)];
    const lastUsed = async () => (await d.db.query<{ id: string; last_used_at: Date | null }>(namedQuery('testLastUsed', 'SELECT id, last_used_at FROM api_keys WHERE id = ANY($1) ORDER BY id'), [ids])).rows;
    await d.db.query(namedQuery('testForgetUse', 'UPDATE api_keys SET last_used_at = NULL WHERE id = ANY($1)'), [ids]);
    // Ben's key is locked (another replica's touch in flight): the statement does not wait for it.
    await d.db.tx(async (tx) => {
      await tx.query(namedQuery('testLockKey', 'SELECT 1 FROM api_keys WHERE id = $1 FOR UPDATE'), [ids[1]]);
      await touchAPIKeys(d.db, ids, 60);
    });
    const after = new Map((await lastUsed()).map((r) => [r.id, r.last_used_at]));
    expect(after.get(ids[0]!)).not.toBeNull();
    expect(after.get(ids[1]!)).toBeNull();
    await touchAPIKeys(d.db, ids, 60);
    expect((await lastUsed()).every((r) => r.last_used_at !== null)).toBe(true);
  });

  it('answers an authenticated request from the key cache, without a query for the key', async () => {
    const d = await startTestDaemon();
    const { token } = await createTestUser(d, 'erin');
    const api = chatApi(d.url, token);
    await api.call('GET', '/api/v2/users/me');
    const before = await metricValue(d.registry, 'coderlite_db_queries_total', { query: 'getAPIKeyWithUser' });
    for (let i = 0; i < 5; i++) await api.call('GET', '/api/v2/users/me');
    expect(await metricValue(d.registry, 'coderlite_db_queries_total', { query: 'getAPIKeyWithUser' })).toBe(before);
  });

  it("closes a revoked token's stream and watch sockets on both replicas with 1008, and refuses its next request on both", async () => {
    const { url } = await createTestDatabase();
    const a = await startTestDaemon({ postgresUrl: url, chat: { fakeTokens: 1000, fakeTokenDelayMs: 50 } });
    const b = await startTestDaemon({ postgresUrl: url, chat: { maxConcurrentTurns: 0 } });
    const { user, token } = await createTestUser(a, 'frank');
    const other = await createUserWithToken(a.db, 'grace');
    const chat = await chatApi(a.url, token).createChat('long');
    const streams = await Promise.all([openStream(a.url, token, chat.id), openStream(b.url, token, chat.id)]);
    const watches = await Promise.all([openWatch(a.url, token), openWatch(b.url, token)]);
    const bystander = await openWatch(b.url, other.token);
    // Both replicas served the token already, so both hold it in their caches.
    for (const d of [a, b]) expect((await chatApi(d.url, token).call('GET', '/api/v2/users/me')).status).toBe(200);

    const keyId = token.slice(0, 10);
    expect((await chatApi(b.url, token).call('DELETE', `/api/v2/users/${user.id}/keys/${keyId}`)).status).toBe(204);
    for (const closed of [...streams.map((s) => s.closed), ...watches.map((w) => w.closed)]) expect(await closed).toMatchObject({ code: 1008 });
    for (const d of [a, b]) expect((await chatApi(d.url, token).call('GET', '/api/v2/users/me')).status).toBe(401);
    expect(await metricValue(a.registry, 'coderlite_http_websockets_revoked_total')).toBe(2);
    // Another user's socket on the same replica stays open: a message still reaches it.
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    const next = new Promise((resolve) => bystander.ws.once('message', resolve));
    await chatApi(b.url, other.token).createChat('still here');
    await next;
    bystander.ws.close();
  });

  it('closes every socket of a suspended or deleted user on the other replica, and refuses the user there', async () => {
    const { url } = await createTestDatabase();
    const a = await startTestDaemon({ postgresUrl: url });
    const b = await startTestDaemon({ postgresUrl: url, chat: { maxConcurrentTurns: 0 } });
    const admin = await createTestUser(a, 'admin');
    const hank = await createTestUser(a, 'hank');
    const w1 = await openWatch(b.url, hank.token);
    expect((await chatApi(a.url, admin.token).call('PUT', '/api/v2/users/hank/status/suspend')).body).toMatchObject({ status: 'suspended' });
    expect(await w1.closed).toMatchObject({ code: 1008 });
    const refused = await chatApi(b.url, hank.token).call('GET', '/api/v2/users/me');
    expect(refused).toMatchObject({ status: 401, body: { message: 'the user is suspended' } });
    await expect(openWatch(b.url, hank.token)).rejects.toThrow('401');

    expect((await chatApi(a.url, admin.token).call('PUT', '/api/v2/users/hank/status/activate')).status).toBe(200);
    // B hears of the activation within the pubsub's delivery time.
    await expect.poll(async () => (await chatApi(b.url, hank.token).call('GET', '/api/v2/users/me')).status, { timeout: 10_000 }).toBe(200);
    const w2 = await openWatch(b.url, hank.token);
    expect((await chatApi(a.url, admin.token).call('DELETE', '/api/v2/users/hank')).status).toBe(204);
    expect(await w2.closed).toMatchObject({ code: 1008 });
    expect((await chatApi(b.url, hank.token).call('GET', '/api/v2/users/me')).status).toBe(401);
  });

  it("after lost notices (the LISTEN connection killed), forgets every cached key and closes the sockets of keys gone meanwhile", async () => {
    const d = await startTestDaemon();
    const { user, token } = await createTestUser(d, 'ivy');
    const kept = await d.auth.admin.createToken(user, { name: 'kept' });
    const gone = await openWatch(d.url, token);
    const stays = await openWatch(d.url, kept.token);
    expect(d.auth.cache.size).toBe(2);
    // Deleted behind the daemon's back: no notice, as if it had been lost.
    await d.db.query(namedQuery('testDeleteKey', 'DELETE FROM api_keys WHERE id = $1'), [token.slice(0, 10)]);
    expect((await chatApi(d.url, token).call('GET', '/api/v2/users/me')).status).toBe(200);
    const { rows } = await d.db.query<{ pid: number }>(
      namedQuery('testListenerPid', "SELECT pid FROM pg_stat_activity WHERE application_name = 'coder-lite pubsub' AND datname = current_database()"),
    );
    await d.db.query(namedQuery('testTerminate', 'SELECT pg_terminate_backend($1)'), [rows[0]!.pid]);
    expect(await gone.closed).toMatchObject({ code: 1008 });
    expect((await chatApi(d.url, token).call('GET', '/api/v2/users/me')).status).toBe(401);
    expect(stays.ws.readyState).toBe(WebSocket.OPEN);
    stays.ws.close();
  });
});
