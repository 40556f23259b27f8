import { describe, expect, it } from 'vitest';

import { chatApi } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase } from '../helpers/db.js';
import { metricValue } from '../helpers/metrics.js';

describe('models and providers over HTTP', () => {
  it("a default picked on replica A is the model of B's next turn: B's config cache heard of it at once", async () => {
    const { url } = await createTestDatabase();
    const a = await startTestDaemon({ postgresUrl: url, chat: { maxConcurrentTurns: 0 } });
    const b = await startTestDaemon({ postgresUrl: url, chat: { fakeTokens: 2, fakeTokenDelayMs: 1 } });
    const admin = await createTestUser(a, 'root');
    const user = await createTestUser(a, 'user');
    const asAdmin = chatApi(a.url, admin.token);
    const asUser = chatApi(a.url, user.token);
    // B resolves (and caches) the default with a first turn.
    const first = await asUser.createChat('warm the cache');
    await expect.poll(async () => (await asUser.get(first.id)).body.status, { timeout: 10_000 }).toBe('waiting');
    expect(await metricValue(b.registry, 'coderlite_llm_requests_total', { model: 'fake-model' })).toBe(1);

    const model = await asAdmin.call('POST', '/api/v2/chats/models', { provider: 'fake', model: 'fake-two', display_name: 'Two', is_default: true });
    expect(model.status).toBe(201);
    expect(model.body).toMatchObject({ model: 'fake-two', is_default: true, enabled: true, display_name: 'Two' });
    const second = await asUser.createChat('which model now?');
    await expect.poll(async () => (await asUser.get(second.id)).body.status, { timeout: 10_000 }).toBe('waiting');
    expect(await metricValue(b.registry, 'coderlite_llm_requests_total', { model: 'fake-two' })).toBe(1);

    // Listing: users see enabled configs (to pick a model_config_id); only admins change them.
    const listed = (await asUser.call('GET', '/api/v2/chats/models')).body.models as Array<{ model: string; is_default: boolean }>;
    expect(listed.map((m) => [m.model, m.is_default])).toEqual([
      ['fake-model', false],
      ['fake-two', true],
    ]);
    expect((await asUser.call('POST', '/api/v2/chats/models', { provider: 'fake', model: 'x' })).status).toBe(403);
    expect((await asUser.call('GET', '/api/v2/chats/providers')).status).toBe(403);
    expect((await asAdmin.call('PATCH', `/api/v2/chats/models/${model.body.id as string}`, { enabled: false })).status).toBe(409);
    expect((await asAdmin.call('POST', '/api/v2/chats/models', { provider: 'nope', model: 'x' })).status).toBe(404);
    expect((await asAdmin.call('POST', '/api/v2/chats/models', { provider: 'fake', model: 'fake-two' })).status).toBe(409);

    // A disabled model config is refused for new chats, and hidden from users.
    const old = (await asAdmin.call('GET', '/api/v2/chats/models')).body.models.find((m: { model: string }) => m.model === 'fake-model') as { id: string };
    expect((await asAdmin.call('PATCH', `/api/v2/chats/models/${old.id}`, { enabled: false })).body).toMatchObject({ enabled: false });
    expect((await asUser.call('POST', '/api/v2/chats', { message: 'x', model_config_id: old.id })).status).toBe(400);
    expect(((await asUser.call('GET', '/api/v2/chats/models')).body.models as unknown[]).length).toBe(1);
  });

  it('refuses to store a provider key without an encryption key, and never returns a stored one', async () => {
    const plain = await startTestDaemon();
    const admin = await createTestUser(plain, 'root');
    const res = await chatApi(plain.url, admin.token).call('POST', '/api/v2/chats/providers', { name: 'p', type: 'openai-compat', base_url: 'http://127.0.0.1:9/v1', api_key: 'sk-x' });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/encryption key/);

    const sealed = await startTestDaemon({ encryptionKey: Buffer.alloc(32, 1).toString('base64') });
    const root = await createTestUser(sealed, 'root');
    const api = chatApi(sealed.url, root.token);
    const made = await api.call('POST', '/api/v2/chats/providers', { name: 'p', type: 'openai-compat', base_url: 'http://127.0.0.1:9/v1', api_key: 'sk-x' });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ has_api_key: true });
    expect(JSON.stringify(made.body)).not.toContain('sk-x');
    const cleared = await api.call('PATCH', '/api/v2/chats/providers/p', { api_key: null });
    expect(cleared.body).toMatchObject({ has_api_key: false });
    expect((await api.call('POST', '/api/v2/chats/providers', { name: 'q', type: 'openai-compat', base_url: 'ftp://x' })).status).toBe(400);
  });
});
