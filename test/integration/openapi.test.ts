import { Compile } from 'typebox/compile';
import { describe, expect, it } from 'vitest';

import { chatApi, openStream } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';

interface Operation {
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>> };

/** Every route fastify serves, as `METHOD /path/{param}`, from its route tree (HEAD is fastify's own twin of GET). */
function servedRoutes(tree: string): string[] {
  const stack: string[] = [];
  const routes: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ├└─]*)(\S.*?) \(([A-Z, ]+)\)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    const path = stack.join('').replace(/\/+/g, '/').replace(/:(\w+)/g, '{$1}');
    for (const method of m[3]!.split(', ')) if (method !== 'HEAD') routes.push(`${method} ${path}`);
  }
  return routes;
}

/** Not API, or documented once under another name: the reference leaves these out on purpose. */
const undocumented = [/^GET \/api\/v2\/docs/, /^GET \/api\/v2\/openapi\.json$/, /^\w+ \/api\/experimental\/chats/];

describe('the OpenAPI document', () => {
  it('lists every route the server serves (the /api/experimental alias aside)', async () => {
    const d = await startTestDaemon();
    const doc = (await (await fetch(`${d.url}/api/v2/openapi.json`)).json()) as Doc;
    expect(doc.openapi).toMatch(/^3\./);
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)));
    const served = servedRoutes(d.app.printRoutes({ commonPrefix: false }));
    expect(served.length).toBeGreaterThan(30);
    const missing = served.filter((r) => !undocumented.some((u) => u.test(r)) && !documented.has(r));
    expect(missing).toEqual([]);
    // A query parameter with a default is optional to the client.
    const params = (doc.paths['/api/v2/chats/{chat}/messages']!.get as unknown as { parameters: Array<{ name: string; in: string; required?: boolean }> }).parameters;
    expect(params.filter((p) => p.in === 'query').map((p) => [p.name, p.required ?? false])).toEqual([
      ['after_id', false],
      ['limit', false],
    ]);
    // The alias still answers.
    expect(served).toContain('GET /api/experimental/chats/{chat}/stream');
  });

  it('serves a docs page whose assets come from the package, not a CDN', async () => {
    const d = await startTestDaemon();
    const page = await fetch(`${d.url}/api/v2/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      expect(asset, asset).not.toMatch(/^(https?:)?\/\//);
      expect((await fetch(new URL(asset, `${d.url}/api/v2/docs/`))).status, asset).toBe(200);
    }
  });

  it('describes what the routes answer: every response in a session of traffic matches its documented schema', async () => {
    const d = await startTestDaemon({ chat: { fakeTokens: 3, fakeTokenDelayMs: 1 } });
    const admin = await createTestUser(d, 'admin');
    const user = await createTestUser(d, 'user');
    const doc = (await (await fetch(`${d.url}/api/v2/openapi.json`)).json()) as Doc;
    const templates = Object.keys(doc.paths).map((p) => ({ p, re: new RegExp(`^${p.replace(/\{\w+\}/g, '[^/]+')}$`) }));
    const checked: string[] = [];

    const call = async (token: string, method: string, path: string, body?: unknown) => {
      const res = await chatApi(d.url, token).call(method, path, body);
      const template = templates.find((t) => t.re.test(path.split('?')[0]!))?.p;
      expect(template, `${method} ${path} is not in the document`).toBeDefined();
      const op = doc.paths[template!]![method.toLowerCase()];
      expect(op, `${method} ${template} is not in the document`).toBeDefined();
      const response = op!.responses[String(res.status)];
      expect(response, `${method} ${template} answered ${res.status}, which is not documented`).toBeDefined();
      const schema = response!.content?.['application/json']?.schema;
      if (schema && res.body !== undefined) {
        const check = Compile(schema as never);
        expect(check.Check(res.body), `${method} ${template} ${res.status}: ${JSON.stringify([...check.Errors(res.body)].slice(0, 2))}`).toBe(true);
      }
      checked.push(`${method} ${template} ${res.status}`);
      return res;
    };

    await call(user.token, 'GET', '/api/v2/buildinfo');
    await call(user.token, 'GET', '/api/v2/users/me');
    await call(admin.token, 'GET', '/api/v2/users');
    await call(user.token, 'GET', '/api/v2/users');
    await call(admin.token, 'POST', '/api/v2/users', { username: 'carol' });
    await call(admin.token, 'GET', '/api/v2/users/carol');
    await call(admin.token, 'GET', '/api/v2/users/nobody');
    await call(admin.token, 'PUT', '/api/v2/users/carol/status/suspend');
    await call(admin.token, 'PUT', '/api/v2/users/carol/status/activate');
    const token = await call(user.token, 'POST', '/api/v2/users/me/keys/tokens', { token_name: 'x' });
    await call(user.token, 'GET', '/api/v2/users/me/keys/tokens');
    await call(user.token, 'DELETE', `/api/v2/users/me/keys/${token.body.id as string}`);
    await call(admin.token, 'DELETE', '/api/v2/users/carol');
    const models = await call(user.token, 'GET', '/api/v2/chats/models');
    await call(admin.token, 'GET', '/api/v2/chats/providers');
    const provider = await call(admin.token, 'POST', '/api/v2/chats/providers', { name: 'fake2', type: 'fake' });
    await call(admin.token, 'PATCH', `/api/v2/chats/providers/${provider.body.id as string}`, { enabled: true });
    const model = await call(admin.token, 'POST', '/api/v2/chats/models', { provider: 'fake2', model: 'm2' });
    await call(admin.token, 'PATCH', `/api/v2/chats/models/${model.body.id as string}`, { display_name: 'M2' });
    await call(admin.token, 'PUT', `/api/v2/chats/models/${model.body.id as string}/default`);
    await call(admin.token, 'PUT', `/api/v2/chats/models/${models.body.models[0].id as string}/default`);
    await call(admin.token, 'GET', '/api/v2/debug/health');
    await call(user.token, 'GET', '/api/v2/debug/health');
    const chat = await call(user.token, 'POST', '/api/v2/chats', { message: 'hello' });
    const id = chat.body.id as string;
    await call(user.token, 'GET', '/api/v2/chats?limit=10');
    await call(user.token, 'GET', `/api/v2/chats/${id}`);
    const s = await openStream(d.url, user.token, id);
    await s.waitFor((e) => e.type === 'status' && e.status === 'waiting');
    s.close();
    await call(user.token, 'POST', `/api/v2/chats/${id}/messages`, { content: 'again' });
    await call(user.token, 'GET', `/api/v2/chats/${id}/messages?after_id=0`);
    await call(user.token, 'POST', `/api/v2/chats/${id}/interrupt`);
    await call(user.token, 'DELETE', `/api/v2/chats/${id}/queue/1`);
    await call(user.token, 'GET', `/api/v2/chats/${id}/stream`);
    await call(user.token, 'DELETE', `/api/v2/chats/${id}`);
    await call(user.token, 'GET', `/api/v2/chats/${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}`);
    await call(user.token, 'POST', '/api/v2/chats', { message: '' });
    await call('not-a-token', 'GET', '/api/v2/users/me');
    expect(checked.length).toBeGreaterThan(30);
  });
});
