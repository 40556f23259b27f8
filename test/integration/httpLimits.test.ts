import { connect, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';

import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import { createLogger } from '../../src/daemon/observability/logger.js';
import { chatApi, openStream } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';

/** Every log line the daemon writes at debug and above. */
function capturingLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new PassThrough();
  stream.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l) lines.push(JSON.parse(l) as { level: number; msg: string });
  });
  return { logger: createLogger({ level: 'debug', format: 'json', destination: stream }), lines };
}

const log = capturingLogger();
// Timeouts shrunk so the test is quick; the defaults are the same mechanism with larger numbers.
const daemon = await startTestDaemon({
  logger: log.logger,
  http: { headersTimeoutMs: 300, requestTimeoutMs: 600, keepAliveTimeoutMs: 300, timeoutCheckIntervalMs: 100, maxConnections: 40, wsPingIntervalMs: 150 },
  chat: { fakeTokens: 2, fakeTokenDelayMs: 0 },
});
const { token } = await createTestUser(daemon);
const api = chatApi(daemon.url, token);
const { hostname, port } = new URL(daemon.url);
const wsUrl = daemon.url.replace(/^http/, 'ws');

/** A raw TCP client: what it received and when the server closed it. */
function rawClient() {
  const socket: Socket = connect(Number(port), hostname);
  let received = '';
  socket.on('data', (d) => (received += d.toString()));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { socket, closed, received: () => received, connected: new Promise<void>((resolve) => socket.once('connect', () => resolve())) };
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${daemon.url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
}

describe('timeouts', () => {
  it('closes a trickled body, a silent connection and an idle keep-alive, while a stream stays open and fed', async () => {
    const chat = await api.createChat('keep me open');
    const stream = await openStream(daemon.url, token, chat.id);
    let pings = 0;
    stream.ws.on('ping', () => pings++);

    const trickle = rawClient();
    await trickle.connected;
    trickle.socket.write(`POST /api/experimental/chats HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{`);
    const feed = setInterval(() => trickle.socket.write(' '), 50);
    const silent = rawClient();
    const idle = rawClient();
    await idle.connected;
    idle.socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');

    await Promise.all([trickle.closed, silent.closed, idle.closed]);
    clearInterval(feed);
    expect(trickle.received()).toMatch(/^HTTP\/1\.1 408/);
    expect(idle.received()).toMatch(/^HTTP\/1\.1 200/);
    // The stream outlived all three timeouts and answered pings meanwhile; it still carries a turn.
    expect(stream.ws.readyState).toBe(WebSocket.OPEN);
    await expect.poll(() => pings).toBeGreaterThan(3);
    expect((await api.send(chat.id, 'still there?')).status).toBe(201);
    await stream.waitFor((e, all) => e.type === 'status' && e.status === 'waiting' && all.filter((x) => x.type === 'message').length === 4);
    stream.close();
  });

  it('terminates a peer that stops answering pings', async () => {
    const chat = await api.createChat('going dark');
    const stream = await openStream(daemon.url, token, chat.id);
    const before = daemon.app.websocketServer.clients.size;
    // A paused socket reads nothing, so it never sees a ping and never answers.
    (stream.ws as unknown as { _socket: Socket })._socket.pause();
    await expect.poll(() => daemon.app.websocketServer.clients.size, { timeout: 10_000 }).toBe(before - 1);
  });
});

describe('framing', () => {
  it('answers a HEAD with a body without a body, and the next request on the connection normally', async () => {
    const c = rawClient();
    await c.connected;
    c.socket.write('HEAD /api/experimental/chats HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{"a":1}');
    c.socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
    await expect.poll(() => c.received()).toMatch(/^HTTP\/1\.1 401 [^]*?\r\n\r\nHTTP\/1\.1 200 [^]*\r\n\r\n\{"status":"ok"\}$/);
    c.socket.destroy();
  });
});

describe('malformed HTTP', () => {
  it('answers what Node cannot parse with JSON and Connection: close, then closes', async () => {
    for (const [request, status] of [
      ['FOO / HTTP/1.1\r\nhost: x\r\n\r\n', 400],
      [`GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ] as const) {
      const c = rawClient();
      await c.connected;
      c.socket.write(request);
      await c.closed;
      expect(c.received()).toMatch(new RegExp(`^HTTP/1\\.1 ${status} [^]*\r\nconnection: close\r\n[^]*\r\n\r\n\\{"message":"[^"]+"\\}$`));
    }
  });
});

describe('connection cap', () => {
  it('answers 503 with Retry-After past the cap instead of queueing, and recovers when connections close', async () => {
    const held = Array.from({ length: 45 }, () => rawClient());
    await Promise.all(held.map((c) => c.connected));
    for (const c of held) c.socket.write('GET /api/v2/buildinfo HTTP/1.1\r\nhost: x\r\n\r\n');
    await expect.poll(() => held.filter((c) => /\r\n\r\n/.test(c.received())).length).toBe(45);
    const refused = held.filter((c) => c.received().startsWith('HTTP/1.1 503'));
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]!.received()).toMatch(/retry-after: 2/i);
    expect(refused[0]!.received()).toMatch(/"message":"the server has too many open connections"/);
    for (const c of held) c.socket.destroy();
    await Promise.all(held.map((c) => c.closed));
    await expect.poll(async () => (await fetch(`${daemon.url}/healthz`)).status).toBe(200);
    expect(await metric('coderlite_http_connections_refused_total')).toBe(refused.length);
  });
});

describe('WebSocket routes', () => {
  it('answers a plain GET on a WebSocket route with 426 JSON', async () => {
    const chat = await api.createChat('plain');
    for (const path of [`/api/experimental/chats/${chat.id}/stream`, '/api/experimental/chats/watch']) {
      const res = await fetch(`${daemon.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status, path).toBe(426);
      expect(res.headers.get('upgrade')).toBe('websocket');
      expect(await res.json()).toEqual({ message: 'this route speaks WebSocket only' });
    }
  });

  it('answers an upgrade on a route without WebSocket with 404 JSON', async () => {
    for (const path of ['/api/v2/users/me', '/healthz', '/no/such/route']) {
      const status = await new Promise<{ code: number; body: string }>((resolve, reject) => {
        const ws = new WebSocket(`${wsUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ code: res.statusCode!, body }));
        });
        ws.on('open', () => reject(new Error(`${path} upgraded`)));
        ws.on('error', () => undefined);
      });
      expect(status.code, path).toBe(404);
      expect(JSON.parse(status.body)).toMatchObject({ message: expect.stringMatching(/^no route for/) });
    }
  });

  it('hangs up on an upgrade answered with an error: at once when the client leaves, else at the request timeout', async () => {
    for (const leave of [true, false]) {
      const c = rawClient();
      await c.connected;
      c.socket.write(`GET /api/experimental/chats/%FF/stream HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      await expect.poll(() => c.received()).toMatch(/^HTTP\/1\.1 400[\s\S]*\r\n\r\n\{/);
      if (leave) c.socket.end();
      await c.closed;
    }
  });

  it('counts a client protocol error and logs it at debug; closes a client that sends too much', async () => {
    const chat = await api.createChat('rude');
    const before = await metric('coderlite_http_websocket_protocol_errors_total');
    const big = await openStream(daemon.url, token, chat.id);
    big.ws.send('x'.repeat(64 * 1024));
    expect((await big.closed).code).toBe(1009);
    await expect.poll(() => metric('coderlite_http_websocket_protocol_errors_total')).toBe(before + 1);
    const line = log.lines.find((l) => l.msg === 'websocket: client protocol error');
    expect(line?.level).toBe(20);
    expect(log.lines.filter((l) => l.level >= 50)).toEqual([]);

    const chatty = await openStream(daemon.url, token, chat.id);
    for (let i = 0; i < 200; i++) chatty.ws.send('{"type":"presence"}');
    expect((await chatty.closed).code).toBe(1008);
  });
});
