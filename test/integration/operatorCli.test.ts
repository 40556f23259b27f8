import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { describe, expect, it } from 'vitest';

import { namedQuery } from '../../src/daemon/postgres/pool.js';

import { chatApi, openStream } from '../helpers/chatClient.js';
import { cleanUp } from '../helpers/cleanup.js';
import { runCli } from '../helpers/cli.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase } from '../helpers/db.js';
import { freeFixedPort } from '../helpers/net.js';

const json = <T>(stdout: string) => JSON.parse(stdout) as T;

describe('operator commands', () => {
  it('users and tokens: create, list, show, revoke (closing the token’s stream on the running server), suspend, delete', async () => {
    const { url } = await createTestDatabase();
    const d = await startTestDaemon({ postgresUrl: url });
    const db = ['--postgres-url', url];
    const root = await runCli(['users', 'create', 'root', '--json', ...db]);
    expect(json<{ is_admin: boolean }>(root.stdout).is_admin).toBe(true);
    const alice = await runCli(['users', 'create', 'alice', '--email', 'a@example.com', '--json', ...db]);
    expect(json<{ is_admin: boolean }>(alice.stdout).is_admin).toBe(false);
    expect((await runCli(['users', 'create', 'alice', ...db])).code).toBe(1);

    const list = await runCli(['users', 'list', ...db]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+USERNAME\s+EMAIL\s+ROLE\s+STATUS\s+CREATED$/m);
    expect(list.stdout).toMatch(/alice\s+a@example\.com\s+member\s+active/);
    expect(list.stdout).toMatch(/root\s+admin\s+active/);

    const made = await runCli(['tokens', 'create', '--user', 'alice', '--name', 'laptop', '--lifetime', '7d', '--json', ...db]);
    expect(made.code).toBe(0);
    const token = json<{ id: string; token: string; expires_at: string }>(made.stdout);
    expect(Date.parse(token.expires_at) - Date.now()).toBeGreaterThan(6 * 86400_000);
    expect((await runCli(['tokens', 'create', '--user', 'alice', '--lifetime', '400d', ...db])).code).toBe(2);
    const tokens = await runCli(['tokens', 'list', '--user', 'alice', ...db]);
    expect(tokens.stdout).toMatch(/^ID\s+NAME\s+CREATED\s+LAST USED\s+EXPIRES$/m);
    expect(tokens.stdout).toMatch(new RegExp(`${token.id}\\s+laptop\\s+\\S+\\s+never`));
    expect(tokens.stdout).not.toContain(token.token.slice(token.id.length + 1));

    const chat = await chatApi(d.url, token.token).createChat('hi');
    const stream = await openStream(d.url, token.token, chat.id);
    const revoked = await runCli(['tokens', 'revoke', token.id, '--user', 'alice', ...db]);
    expect(revoked.code).toBe(0);
    expect(await stream.closed).toMatchObject({ code: 1008 });
    expect((await chatApi(d.url, token.token).call('GET', '/api/v2/users/me')).status).toBe(401);
    expect((await runCli(['tokens', 'revoke', token.id, '--user', 'alice', ...db])).code).toBe(1);

    const shown = json<{ tokens: unknown[]; status: string }>((await runCli(['users', 'show', 'alice', '--json', ...db])).stdout);
    expect(shown).toMatchObject({ status: 'active' });
    expect(shown.tokens).toHaveLength(1);
    expect(json<{ status: string }>((await runCli(['users', 'suspend', 'alice', '--json', ...db])).stdout).status).toBe('suspended');
    expect(json<{ status: string }>((await runCli(['users', 'activate', 'alice', '--json', ...db])).stdout).status).toBe('active');
    expect((await runCli(['users', 'delete', 'alice', ...db])).code).toBe(1);
    expect((await runCli(['users', 'delete', 'alice', '--yes', ...db])).code).toBe(0);
    const missing = await runCli(['users', 'show', 'alice', '--json', ...db]);
    expect(missing.code).toBe(1);
    expect(json<{ error: { message: string } }>(missing.stdout).error.message).toMatch(/no user "alice"/);
  });

  it('models and providers: add, list, make default; a provider key is stored encrypted and never shown', async () => {
    const { url } = await createTestDatabase();
    const key = Buffer.alloc(32, 7).toString('base64');
    // No retries: the upstream below answers 503 (retryable), and the test counts its one request.
    const d = await startTestDaemon({ postgresUrl: url, encryptionKey: key, chat: { llmRetries: 0 } });
    const { token } = await createTestUser(d, 'root');
    const db = ['--postgres-url', url];
    // A model server that records what it was sent and refuses: the turn proves the daemon opened the stored key.
    const seen: string[] = [];
    const llm = createServer((req, res) => {
      seen.push(req.headers.authorization ?? '');
      res.writeHead(503).end('no');
    });
    await new Promise<void>((resolve) => llm.listen(0, '127.0.0.1', resolve));
    cleanUp(() => new Promise((resolve) => llm.close(resolve)));
    const llmUrl = `http://127.0.0.1:${(llm.address() as AddressInfo).port}/v1`;
    const noKey = await runCli(['providers', 'create', 'openai', '--type', 'openai-compat', '--base-url', 'http://127.0.0.1:9/v1', ...db], {
      env: { CODER_LITE_PROVIDER_API_KEY: 'sk-secret-value' },
    });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/encryption key/);
    const created = await runCli(['providers', 'create', 'openai', '--type', 'openai-compat', '--base-url', llmUrl, '--json', ...db], {
      env: { CODER_LITE_PROVIDER_API_KEY: 'sk-secret-value', CODER_LITE_ENCRYPTION_KEY: key },
    });
    expect(created.code).toBe(0);
    expect(json<{ has_api_key: boolean }>(created.stdout).has_api_key).toBe(true);
    const providers = await runCli(['providers', 'list', ...db]);
    expect(providers.stdout).toMatch(new RegExp(`openai\\s+openai-compat\\s+${llmUrl}\\s+yes\\s+stored`));
    expect(providers.stdout).not.toContain('sk-secret-value');
    const stored = await d.db.query(namedQuery('testProviderDump', `SELECT row_to_json(p)::text AS dump FROM chat_providers p`));
    expect(JSON.stringify(stored.rows)).not.toContain('sk-secret-value');
    expect(JSON.stringify(stored.rows)).not.toContain(Buffer.from('sk-secret-value').toString('hex'));

    const model = json<{ id: string }>((await runCli(['models', 'create', '--provider', 'openai', '--model', 'gpt-x', '--json', ...db])).stdout);
    const list = await runCli(['models', 'list', ...db]);
    expect(list.stdout).toMatch(new RegExp(`${model.id}\\s+openai\\s+gpt-x`));
    expect((await runCli(['models', 'set-default', 'not-a-uuid', ...db])).code).toBe(2);
    expect((await runCli(['models', 'set-default', model.id, ...db])).code).toBe(0);
    // The running server's config cache heard of it at once: the next chat runs on the new default, with its key.
    const chat = await chatApi(d.url, token).createChat('which model?');
    await expect.poll(async () => (await chatApi(d.url, token).get(chat.id)).body.status, { timeout: 10_000 }).toBe('error');
    expect((await chatApi(d.url, token).get(chat.id)).body.last_error).toBe('The model provider is unavailable or overloaded. (HTTP 503)');
    expect(seen).toEqual(['Bearer sk-secret-value']);
    expect((await runCli(['models', 'update', model.id, '--no-enabled', ...db])).code).toBe(1);
  });

  it('doctor: ok against a healthy server and database, exit 1 against a stopped database', async () => {
    const { url } = await createTestDatabase();
    const d = await startTestDaemon({ postgresUrl: url });
    const { token } = await createTestUser(d, 'root');
    const server = await runCli(['doctor', '--url', d.url, '--token', token, '--json']);
    expect(server.code).toBe(0);
    const report = json<{ severity: string; checks: Array<{ name: string; severity: string }> }>(server.stdout);
    expect(report.checks.map((c) => c.name)).toEqual(['database', 'pubsub', 'notify_queue', 'pool', 'webpush']);
    expect(report.checks.every((c) => c.severity !== 'error')).toBe(true);

    const direct = await runCli(['doctor', '--postgres-url', url]);
    expect(direct.code).toBe(0);
    expect(direct.stdout).toMatch(/database\s+answered in/);
    expect(direct.stdout).toMatch(/pubsub\s+connected; a probe came back/);
    expect(direct.stdout).toMatch(/notify_queue\s+NOTIFY queue 0\.00% used/);

    const stopped = await runCli(['doctor', '--postgres-url', `postgres://u:secret@127.0.0.1:${await freeFixedPort()}/db`]);
    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toMatch(/✗ error\s+database\s+the database did not answer/);
    expect(stopped.stdout + stopped.stderr).not.toContain('secret');

    const notAdmin = await createTestUser(d, 'plain');
    expect((await runCli(['doctor', '--url', d.url, '--token', notAdmin.token])).code).toBe(1);
  });
});
