import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import WebSocket, { WebSocketServer } from 'ws';

/**
 * A fake chat API with the routes and stream events of DESIGN §4, so the scaletest's turn logic, failure classes and
 * CLI (with --url) are tested without a daemon. `behave(chatIndex)` picks a misbehaviour per chat (the index is in
 * the first message). Its /metrics counts two queries per chat API call.
 */
export type Misbehaviour = 'none' | 'create-500' | 'message-409' | 'stream-404' | 'error-turn-2' | 'close-after-1' | 'hang-turn-2' | 'coalesce';

interface FakeChat {
  id: string;
  index: number;
  status: string;
  messages: Array<{ id: number; role: string }>;
  sockets: Set<WebSocket>;
  turns: number;
}

export async function startFakeChatApi(behave: (index: number) => Misbehaviour = () => 'none') {
  const chats = new Map<string, FakeChat>();
  let nextMessageId = 0;
  let requests = 0;
  const archived: string[] = [];
  const prompts: string[] = [];
  let queries = 0;
  let subscriptions = 0;
  let pushes = 0;
  let openStreams = 0;
  let peakStreams = 0;
  const send = (chat: FakeChat, events: unknown[]) => {
    for (const ws of chat.sockets) ws.send(JSON.stringify(events));
  };
  const turn = (chat: FakeChat) => {
    chat.turns++;
    const mode = behave(chat.index);
    if (mode === 'hang-turn-2' && chat.turns === 2) return;
    if (mode === 'close-after-1' && chat.turns === 2) {
      for (const ws of chat.sockets) ws.close(4000, 'bye');
      return;
    }
    const coalesce = mode === 'coalesce';
    setImmediate(() => {
      if (mode === 'error-turn-2' && chat.turns === 2) {
        chat.status = 'error';
        send(chat, [{ type: 'status', status: 'error', chat: { status: 'error', last_error: 'provider exploded' } }]);
        return;
      }
      chat.status = 'running';
      // A stream that coalesces notices may skip `running` and deliver the message before the status.
      if (!coalesce) send(chat, [{ type: 'status', status: 'running' }]);
      setTimeout(() => {
        const msg = { id: ++nextMessageId, role: 'assistant' };
        chat.messages.push(msg);
        send(chat, [{ type: 'message_part', part: { text: 'a' } }, { type: 'message_part', part: { text: 'b' } }, { type: 'message', message: msg }]);
        chat.status = 'waiting';
        send(chat, [{ type: 'status', status: 'waiting' }]);
        pushes += subscriptions;
      }, 2);
    });
  };
  const body = (req: IncomingMessage) =>
    new Promise<Record<string, string>>((resolve) => {
      let s = '';
      req.on('data', (c: Buffer) => (s += c.toString()));
      req.on('end', () => resolve(JSON.parse(s) as Record<string, string>));
    });
  const server: Server = createServer(async (req, res) => {
    requests++;
    const json = (status: number, obj: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end(
        `coderlite_db_queries_total{query="insertChatMessage"} ${queries}\ncoderlite_db_pool_waiting_connections 1\ncoderlite_db_pool_total_connections 4\n` +
          `coderlite_db_pool_acquire_wait_seconds_bucket{le="0.001"} ${queries}\ncoderlite_db_pool_acquire_wait_seconds_bucket{le="+Inf"} ${queries}\n`,
      );
    }
    if (req.headers['coder-session-token'] === undefined) return json(401, { message: 'no token' });
    if (req.url === '/api/v2/users/me') return json(200, { id: 'u1' });
    if (req.method === 'POST' && req.url === '/api/v2/users/me/webpush/subscription') {
      subscriptions++;
      pushes++; // the test push
      res.writeHead(204);
      return res.end();
    }
    queries += 2;
    if (req.method === 'POST' && req.url === '/api/experimental/chats') {
      const b = await body(req);
      const index = Number(/scaletest (\d+)/.exec(b.title!)![1]);
      prompts.push(b.message!);
      if (behave(index) === 'create-500') return json(500, { message: 'database on fire' });
      const chat: FakeChat = { id: `c${index}`, index, status: 'pending', messages: [{ id: ++nextMessageId, role: 'user' }], sockets: new Set(), turns: 0 };
      chats.set(chat.id, chat);
      turn(chat);
      return json(201, { id: chat.id, status: 'pending' });
    }
    const archive = /^\/api\/experimental\/chats\/([^/]+)$/.exec(req.url ?? '');
    if (req.method === 'DELETE' && archive && chats.has(archive[1]!)) {
      archived.push(archive[1]!);
      res.writeHead(204);
      return res.end();
    }
    if (req.method === 'DELETE' && req.url === '/api/v2/users/me/webpush/subscription') {
      subscriptions--;
      res.writeHead(204);
      return res.end();
    }
    const m = /^\/api\/experimental\/chats\/([^/]+)\/messages$/.exec(req.url ?? '');
    const chat = m && chats.get(m[1]!);
    if (req.method === 'POST' && chat) {
      prompts.push((await body(req)).content!);
      if (behave(chat.index) === 'message-409') return json(409, { message: 'queue full' });
      chat.messages.push({ id: ++nextMessageId, role: 'user' });
      chat.status = 'pending';
      send(chat, [{ type: 'status', status: 'pending' }]);
      turn(chat);
      return json(201, { id: nextMessageId });
    }
    json(404, { message: 'not found' });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const m = /^\/api\/experimental\/chats\/([^/]+)\/stream\?after_id=0$/.exec(req.url ?? '');
    const chat = m && chats.get(m[1]!);
    if (!chat || behave(chat.index) === 'stream-404') {
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      openStreams++;
      peakStreams = Math.max(peakStreams, openStreams);
      ws.on('close', () => {
        openStreams--;
        chat.sockets.delete(ws);
      });
      chat.sockets.add(ws);
      ws.send(JSON.stringify([{ type: 'status', status: chat.status }, ...chat.messages.map((message) => ({ type: 'message', message }))]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests: () => requests,
    /** Chats archived (DELETE), and push subscriptions left. */
    archived: () => [...archived],
    subscriptions: () => subscriptions,
    /** Every message sent, in order of arrival. */
    prompts: () => [...prompts],
    peakStreams: () => peakStreams,
    openStreams: () => openStreams,
    sink: { newSubscription: () => ({ endpoint: 'http://127.0.0.1:1/push', auth_key: 'a', p256dh_key: 'p' }), received: () => pushes, close: async () => {} },
    close: () =>
      new Promise<void>((r) => {
        for (const ws of wss.clients) ws.terminate();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export type FakeChatApi = Awaited<ReturnType<typeof startFakeChatApi>>;
