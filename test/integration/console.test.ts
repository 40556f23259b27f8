import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import { consoleCsp } from '../../src/daemon/http/routes/console.js';
import { chatApi } from '../helpers/chatClient.js';
import { startServerProcess } from '../helpers/cli.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase } from '../helpers/db.js';

const daemon = await startTestDaemon({ chat: { fakeTokens: 3, fakeTokenDelayMs: 1 } });
const alice = await createTestUser(daemon);

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${daemon.url}${path}`, { headers });

/** The asset prefix the page names, e.g. `/assets/0123abcd4567`. */
async function assetBase(): Promise<string> {
  const html = await (await get('/')).text();
  const m = /src="(\/assets\/[0-9a-f]{12})\/app\.js"/.exec(html);
  expect(m, html).not.toBeNull();
  return m![1]!;
}

describe('web console route', () => {
  it('serves the page at / and at /chats/:id, revalidated on every load, under a same-origin CSP', async () => {
    const root = await get('/');
    expect(root.status).toBe(200);
    expect(root.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(root.headers.get('cache-control')).toBe('no-cache');
    expect(root.headers.get('content-security-policy')).toBe(consoleCsp);
    expect(consoleCsp).toMatch(/^default-src 'self';/);
    expect(root.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await root.text();
    expect(html).not.toContain('%ASSETS%');
    // Nothing from another origin: every src/href is a path on this one.
    for (const [, url] of html.matchAll(/(?:src|href)="([^"]+)"/g)) expect(url).toMatch(/^\/(?!\/)/);

    const chatPage = await get('/chats/8f14e45f-ceea-467f-a0e6-4a6bd3d9a0c1');
    expect(chatPage.status).toBe(200);
    expect(await chatPage.text()).toBe(html);

    const again = await get('/', { 'if-none-match': root.headers.get('etag')! });
    expect(again.status).toBe(304);
  });

  it('serves the service worker from the root with Service-Worker-Allowed and no caching', async () => {
    const res = await get('/sw.js');
    expect(res.status).toBe(200);
    expect(res.headers.get('service-worker-allowed')).toBe('/');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await res.text()).toContain("addEventListener('push'");
  });

  it('serves assets under a content-hashed prefix for good, and refuses other prefixes', async () => {
    const base = await assetBase();
    for (const [name, type] of [
      ['app.js', 'text/javascript; charset=utf-8'],
      ['api.js', 'text/javascript; charset=utf-8'],
      ['push.js', 'text/javascript; charset=utf-8'],
      ['style.css', 'text/css; charset=utf-8'],
    ] as const) {
      const res = await get(`${base}/${name}`);
      expect(res.status, name).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    }
    expect((await get(`${base}/nope.js`)).status).toBe(404);
    expect((await get('/assets/000000000000/app.js')).status).toBe(404);
    const icon = await get('/icon.png');
    expect(icon.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await icon.arrayBuffer()).subarray(1, 4).toString()).toBe('PNG');
  });

  it('is served by the built binary too: the static files are copied into dist', async () => {
    const { url } = await createTestDatabase();
    const server = await startServerProcess(['--postgres-url', url]);
    try {
      const html = await (await fetch(`${server.url}/`)).text();
      const base = /src="(\/assets\/[0-9a-f]{12})\/app\.js"/.exec(html)![1]!;
      // The same files as the sources: same content hash.
      expect(base).toBe(await assetBase());
      expect((await fetch(`${server.url}${base}/app.js`)).status).toBe(200);
      expect((await fetch(`${server.url}/sw.js`)).headers.get('service-worker-allowed')).toBe('/');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('keeps the JSON 404 for unknown paths', async () => {
    const res = await get('/nowhere');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ message: 'no route for GET /nowhere' });
  });
});

describe('WebSocket token subprotocol (browsers cannot send headers on a WebSocket)', () => {
  const open = (path: string, protocols: string[]) =>
    new Promise<{ ws: WebSocket; first: unknown[] }>((resolve, reject) => {
      const ws = new WebSocket(`${daemon.url.replace('http', 'ws')}${path}`, protocols);
      ws.once('message', (data) => resolve({ ws, first: JSON.parse(data.toString()) as unknown[] }));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });

  it('authenticates with coder-lite.token.<token> and answers with the plain coder-lite protocol', async () => {
    const chat = await chatApi(daemon.url, alice.token).createChat('over a subprotocol');
    const { ws, first } = await open(`/api/experimental/chats/${chat.id}/stream`, ['coder-lite', `coder-lite.token.${alice.token}`]);
    expect(ws.protocol).toBe('coder-lite');
    expect(first[0]).toMatchObject({ type: 'status' });
    ws.close();
  });

  it('refuses a wrong token and another user’s chat', async () => {
    const chat = await chatApi(daemon.url, alice.token).createChat('private');
    await expect(open(`/api/experimental/chats/${chat.id}/stream`, ['coder-lite', 'coder-lite.token.abcdefghij-wrongwrongwrongwrongwrong'])).rejects.toThrow('HTTP 401');
    const bob = await createTestUser(daemon);
    await expect(open(`/api/experimental/chats/${chat.id}/stream`, ['coder-lite', `coder-lite.token.${bob.token}`])).rejects.toThrow('HTTP 404');
  });
});
