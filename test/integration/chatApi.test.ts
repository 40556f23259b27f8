import { afterAll, describe, expect, it } from 'vitest';

import type { StreamEvent } from '../../src/daemon/chat/events.js';
import { insertChatMessage } from '../../src/daemon/store/messages.js';
import { startLlmMock } from '../../src/scaletest/llmMock.js';
import { chatApi, openStream } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';

const daemon = await startTestDaemon({ chat: { fakeTokens: 5, fakeTokenDelayMs: 5 } });
const alice = await createTestUser(daemon);
const bob = await createTestUser(daemon);
const api = chatApi(daemon.url, alice.token);

const queryCount = (name: string) => daemon.db.stats().queries[name] ?? 0;

describe('chat API and streams', () => {
  it('streams running, parts, the assistant message and waiting; the snapshot starts with status', async () => {
    // A replica whose worker has room claims the turn in the statement that starts it: no `pending` step.
    const chat = await api.createChat('hello world');
    expect(chat.status).toBe('running');
    const stream = await openStream(daemon.url, alice.token, chat.id);
    await stream.waitFor((e, all) => e.type === 'status' && e.status === 'waiting' && all.some((x) => x.type === 'message' && x.message.role === 'assistant'));
    expect(stream.events()[0]!.type).toBe('status');
    // The first turn may end before the stream is armed; a turn started while it is open streams every part.
    const seen = stream.events().length;
    expect((await api.send(chat.id, 'and again')).status).toBe(201);
    const secondReply = (e: StreamEvent, all: StreamEvent[]) => e.type === 'message' && all.indexOf(e) >= seen && e.message.role === 'assistant';
    await stream.waitFor((e, all) => e.type === 'status' && e.status === 'waiting' && all.indexOf(e) > all.findIndex((x) => secondReply(x, all)) && all.some((x) => secondReply(x, all)));
    const events = stream.events().slice(seen);
    const parts = events.filter((e) => e.type === 'message_part');
    const assistant = events.find((e) => e.type === 'message' && e.message.role === 'assistant');
    // Parts seen live make up the persisted reply.
    expect(parts.length).toBeGreaterThan(0);
    expect(assistant && assistant.type === 'message' && assistant.message.content).toBe(parts.map((p) => (p.type === 'message_part' ? p.text : '')).join(''));
    expect(stream.statuses().at(-1)).toBe('waiting');
    expect(events.flatMap((e) => (e.type === 'status' ? [e.status] : []))).toEqual(['running', 'waiting']);
    stream.close();

    // A second subscriber with after_id sees only the newer messages.
    const all = await api.call('GET', `/api/experimental/chats/${chat.id}/messages`);
    const [first, second, ...rest] = all.body.messages as Array<{ id: number; role: string }>;
    expect(first!.role).toBe('user');
    expect(second!.role).toBe('assistant');
    const late = await openStream(daemon.url, alice.token, chat.id, first!.id);
    await late.waitFor((e) => e.type === 'message');
    const snapshot = late.frames[0]!;
    expect(snapshot[0]).toMatchObject({ type: 'status', status: 'waiting', last_error: null });
    expect(snapshot.filter((e) => e.type === 'message').map((e) => (e.type === 'message' ? e.message.id : 0))).toEqual([second!.id, ...rest.map((m) => m.id)]);
    late.close();
  });

  it('a replica with no room for another turn leaves the chat pending, and claims it once a turn ends', async () => {
    const full = await startTestDaemon({ chat: { fakeTokens: 100, fakeTokenDelayMs: 10, maxConcurrentTurns: 1 } });
    const owner = await createTestUser(full);
    const fullApi = chatApi(full.url, owner.token);
    const first = await fullApi.createChat('one');
    expect(first.status).toBe('running');
    const second = await fullApi.createChat('two');
    expect(second.status).toBe('pending');
    const stream = await openStream(full.url, owner.token, second.id);
    await stream.waitFor((e) => e.type === 'status' && e.status === 'waiting', 20_000);
    expect(stream.statuses()).toEqual(['pending', 'running', 'waiting']);
    expect((await chatApi(full.url, owner.token).get(first.id)).body.status).toBe('waiting');
    stream.close();
  });

  it('sends frames of at most 256 events', async () => {
    const chat = await api.createChat('many');
    const s0 = await openStream(daemon.url, alice.token, chat.id);
    await s0.waitFor((e) => e.type === 'status' && e.status === 'waiting');
    s0.close();
    for (let i = 0; i < 300; i++) await insertChatMessage(daemon.db, chat.id, 'user', `m${i}`);
    const s = await openStream(daemon.url, alice.token, chat.id);
    await expect.poll(() => s.events().filter((e) => e.type === 'message').length).toBe(302);
    expect(s.frames.length).toBeGreaterThan(1);
    for (const f of s.frames) expect(f.length).toBeLessThanOrEqual(256);
    s.close();
  });

  it('opens a stream with the middleware row: one authorization read, one re-read, nothing more', async () => {
    const chat = await api.createChat('count my reads');
    const s0 = await openStream(daemon.url, alice.token, chat.id);
    await s0.waitFor((e) => e.type === 'status' && e.status === 'waiting');
    s0.close();
    await expect.poll(() => daemon.chats.parts.size()).toBe(0);
    const before = queryCount('getChatsByIDs');
    const s = await openStream(daemon.url, alice.token, chat.id);
    await s.waitFor((e) => e.type === 'status');
    // The middleware's authorized read and the re-read after arming (DESIGN §4 step 3); `subscribe(chatId)` would add a third.
    expect(queryCount('getChatsByIDs') - before).toBe(2);
    s.close();
  });

  it('queues messages while running, promotes one per turn, and refuses the 21st', async () => {
    const slow = await startTestDaemon({ chat: { fakeTokens: 3, fakeTokenDelayMs: 150 } });
    const user = await createTestUser(slow);
    const a = chatApi(slow.url, user.token);
    const chat = await a.createChat('start');
    const s = await openStream(slow.url, user.token, chat.id);
    await s.waitFor((e) => e.type === 'status' && e.status === 'running');
    const results = [];
    for (let i = 1; i <= 21; i++) results.push(await a.send(chat.id, `queued ${i}`));
    expect(results.slice(0, 20).map((r) => r.status)).toEqual(Array(20).fill(202));
    expect(results[20]!.status).toBe(409);
    expect(results[20]!.body.message).toMatch(/queue is full/);
    await s.waitFor((e) => e.type === 'queue_update' && e.queued.length === 20);
    // After the first turn, exactly one queued message became the next user message.
    await s.waitFor((e, all) => e.type === 'queue_update' && e.queued.length === 19 && all.indexOf(e) > all.findIndex((x) => x.type === 'queue_update' && x.queued.length === 20));
    const messages = await a.call('GET', `/api/experimental/chats/${chat.id}/messages`);
    const users = (messages.body.messages as Array<{ role: string; content: string }>).filter((m) => m.role === 'user').map((m) => m.content);
    expect(users.slice(0, 2)).toEqual(['start', 'queued 1']);
    await a.interrupt(chat.id);
    s.close();
  });

  it('answers 404 for another user and 400 for malformed input, never 500', async () => {
    const chat = await api.createChat('private');
    const b = chatApi(daemon.url, bob.token);
    for (const [method, path, body] of [
      ['GET', `/api/experimental/chats/${chat.id}`],
      ['GET', `/api/experimental/chats/${chat.id}/messages`],
      ['POST', `/api/experimental/chats/${chat.id}/messages`, { content: 'hi' }],
      ['POST', `/api/experimental/chats/${chat.id}/interrupt`],
      ['DELETE', `/api/experimental/chats/${chat.id}`],
    ] as const) {
      const res = await b.call(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.message).toBe('chat not found');
    }
    await expect(openStream(daemon.url, bob.token, chat.id)).rejects.toMatchObject({ status: 404 });
    expect((await b.call('GET', '/api/experimental/chats')).body.chats).toEqual([]);

    const bad: Array<[string, string, unknown?]> = [
      ['GET', '/api/experimental/chats/not-a-uuid'],
      ['GET', `/api/experimental/chats/${chat.id}/messages?after_id=-1`],
      ['GET', `/api/experimental/chats/${chat.id}/messages?after_id=abc`],
      ['GET', '/api/experimental/chats?limit=0'],
      ['GET', '/api/experimental/chats?after_id=xyz'],
      ['POST', '/api/experimental/chats', {}],
      ['POST', '/api/experimental/chats', { message: '' }],
      ['POST', '/api/experimental/chats', { message: 'x', model_config_id: 'nope' }],
      ['POST', '/api/experimental/chats', { message: 'x', model_config_id: '00000000-0000-4000-8000-000000000000' }],
      ['POST', '/api/experimental/chats', { message: 'x', extra: true }],
      ['POST', `/api/experimental/chats/${chat.id}/messages`, { content: '' }],
      ['POST', `/api/experimental/chats/${chat.id}/messages`, []],
    ];
    for (const [method, path, body] of bad) {
      const res = await api.call(method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(typeof res.body.message).toBe('string');
    }
    const raw = await fetch(`${daemon.url}/api/experimental/chats`, { method: 'POST', headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' }, body: '{"message":' });
    expect(raw.status).toBe(400);
    await expect(openStream(daemon.url, alice.token, 'not-a-uuid')).rejects.toMatchObject({ status: 400 });
    await expect(openStream(daemon.url, 'bogus-token', chat.id)).rejects.toMatchObject({ status: 401 });
  });

  it('lists the caller’s chats newest first, pages with after_id, and hides archived ones', async () => {
    const user = await createTestUser(daemon);
    const a = chatApi(daemon.url, user.token);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await a.createChat(`chat ${i}`)).id);
    const page1 = await a.call('GET', '/api/experimental/chats?limit=2');
    expect(page1.body.chats.map((c: { id: string }) => c.id)).toEqual([ids[2], ids[1]]);
    const page2 = await a.call('GET', `/api/experimental/chats?limit=2&after_id=${ids[1]}`);
    expect(page2.body.chats.map((c: { id: string }) => c.id)).toEqual([ids[0]]);
    expect((await a.call('DELETE', `/api/experimental/chats/${ids[2]}`)).status).toBe(204);
    const after = await a.call('GET', '/api/experimental/chats');
    expect(after.body.chats.map((c: { id: string }) => c.id)).toEqual([ids[1], ids[0]]);
    expect((await a.get(ids[2]!)).body.archived).toBe(true);
    expect((await a.send(ids[2]!, 'hello?')).status).toBe(409);
  });

  it('leaves no stream entry, pubsub subscription or subscriber after subscribers leave and the turn ends', async () => {
    await expect.poll(() => daemon.chats.worker.runningTurns()).toBe(0);
    await expect.poll(() => daemon.chats.parts.size()).toBe(0);
    const listenersBefore = await subscriptionCount();
    const chat = await api.createChat('ephemeral');
    const streams = await Promise.all([0, 1, 2].map(() => openStream(daemon.url, alice.token, chat.id)));
    await Promise.all(streams.map((s) => s.waitFor((e) => e.type === 'status' && e.status === 'waiting')));
    expect(daemon.chats.parts.size()).toBe(1);
    for (const s of streams) s.close();
    await Promise.all(streams.map((s) => s.closed));
    await expect.poll(() => daemon.chats.parts.size()).toBe(0);
    await expect.poll(subscriptionCount).toBe(listenersBefore);
    await expect.poll(() => metric('coderlite_chat_stream_subscribers')).toBe(0);
  });

  it('runs turns through an openai-compat server, and a failing one ends the turn in error with last_error', async () => {
    // The delay before the first token lets the stream open while the turn runs.
    const llm = await startLlmMock({ latencyMs: 300, tokens: 4 });
    afterAll(() => llm.close());
    const d = await startTestDaemon({ chat: { provider: 'openai-compat', llmBaseUrl: llm.baseUrl, llmModel: 'mock' } });
    const user = await createTestUser(d);
    const a = chatApi(d.url, user.token);
    const chat = await a.createChat('tell me');
    const s = await openStream(d.url, user.token, chat.id);
    await s.waitFor((e) => e.type === 'status' && e.status === 'waiting');
    expect(s.events().filter((e) => e.type === 'message_part').length).toBe(4);
    s.close();

    const dead = await startTestDaemon({ chat: { provider: 'openai-compat', llmBaseUrl: 'http://127.0.0.1:9/v1', llmRetries: 1, llmRetryBaseDelayMs: 1000 } });
    const u2 = await createTestUser(dead);
    const c2 = await chatApi(dead.url, u2.token).createChat('anyone there?');
    const s2 = await openStream(dead.url, u2.token, c2.id);
    await s2.waitFor((e) => e.type === 'status' && e.status === 'error');
    const err = s2.events().findLast((e) => e.type === 'status');
    // A refused connection is retried once (the test's limit), announced, then the turn fails with a safe message.
    expect(err).toMatchObject({ status: 'error', last_error: 'The model provider is unavailable or overloaded.' });
    expect(s2.events().find((e) => e.type === 'retry')).toMatchObject({ attempt: 1, kind: 'overloaded', delay_ms: expect.any(Number), retrying_at: expect.any(String) });
    expect(s2.events().findLast((e) => e.type === 'error')).toMatchObject({ message: 'The model provider is unavailable or overloaded.', kind: 'overloaded', retryable: false });
    expect(JSON.stringify(s2.events())).not.toContain('127.0.0.1:9');
    s2.close();
  });

  it('times a model out when it stalls, not while it keeps streaming a long reply', async () => {
    const llmTimeoutMs = 1000;
    // 15 tokens 100 ms apart take longer than the timeout in all, but never stall for it.
    const steady = await startLlmMock({ tokens: 15, tokenDelayMs: 100 });
    const silent = await startLlmMock({ latencyMs: 10 * llmTimeoutMs });
    afterAll(async () => {
      await steady.close();
      await silent.close();
    });
    for (const [llm, expected] of [
      [steady, { status: 'waiting' }],
      [silent, { status: 'error', last_error: 'The model provider stopped answering.' }],
    ] as const) {
      const d = await startTestDaemon({ chat: { provider: 'openai-compat', llmBaseUrl: llm.baseUrl, llmModel: 'mock', llmTimeoutMs, llmRetries: 0 } });
      const user = await createTestUser(d);
      const chat = await chatApi(d.url, user.token).createChat('take your time');
      const s = await openStream(d.url, user.token, chat.id);
      await s.waitFor((e) => e.type === 'status' && (e.status === 'waiting' || e.status === 'error'));
      expect(s.events().findLast((e) => e.type === 'status')).toMatchObject(expected);
      s.close();
    }
  });

  it('cuts off a client that does not read instead of buffering without bound', async () => {
    const d = await startTestDaemon({ chat: { fakeTokens: 400_000, fakeTokenDelayMs: 0, streamBacklogBytes: 64 * 1024 } });
    const user = await createTestUser(d);
    const chat = await chatApi(d.url, user.token).createChat('flood me');
    const s = await openStream(d.url, user.token, chat.id);
    // Stop reading: the kernel buffers fill, then the server's own backlog passes the bound.
    (s.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    // Only the server's backlog bound closes this socket: a healthy stream stays open after the turn.
    await expect.poll(() => d.app.websocketServer.clients.size, { timeout: 30_000 }).toBe(0);
  });
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${daemon.url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
}

const subscriptionCount = () => metric('coder_pubsub_current_subscribers');
