import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { describe, expect, it } from 'vitest';

import type { StreamEvent } from '../../src/daemon/chat/events.js';
import { getChatByID } from '../../src/daemon/store/chats.js';
import { getChatMessagesAfter } from '../../src/daemon/store/messages.js';
import { chatApi, openStream, type StreamClient } from '../helpers/chatClient.js';
import { startServerProcess } from '../helpers/cli.js';
import { cleanUp } from '../helpers/cleanup.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase, createTestPool } from '../helpers/db.js';
import { metricValue } from '../helpers/metrics.js';

type Part = Extract<StreamEvent, { type: 'message_part' }>;
const partsOf = (s: StreamClient) => s.events().filter((e): e is Part => e.type === 'message_part');
const replyOf = (s: StreamClient) => s.events().findLast((e) => e.type === 'message' && e.message.role === 'assistant') as Extract<StreamEvent, { type: 'message' }> | undefined;
/** The reply, and the chat waiting (in the snapshot, the status comes first). */
async function waitReply(s: StreamClient, timeout?: number): Promise<void> {
  await s.waitFor((e) => e.type === 'message' && e.message.role === 'assistant', timeout);
  await expect.poll(() => s.statuses().at(-1), { timeout }).toBe('waiting');
}

/** A (runs turns) and B (serves the API only, so every turn runs on A) on one PostgreSQL. */
async function twoReplicas(chat: { fakeTokens: number; fakeTokenDelayMs: number }) {
  const { url } = await createTestDatabase();
  const a = await startTestDaemon({ postgresUrl: url, chat });
  const b = await startTestDaemon({ postgresUrl: url, chat: { ...chat, maxConcurrentTurns: 0 } });
  const user = await createTestUser(a);
  return { a, b, user };
}

describe('live turns across replicas', () => {
  it('shows a viewer on B every part of a turn on A, in order, seq 1, 2, 3… without holes', async () => {
    const { a, b, user } = await twoReplicas({ fakeTokens: 60, fakeTokenDelayMs: 10 });
    const api = chatApi(b.url, user.token);
    const chat = await api.createChat('first');
    const s = await openStream(b.url, user.token, chat.id);
    await waitReply(s);
    const before = s.events().length;
    await api.send(chat.id, 'second');
    await s.waitFor((e, all) => all.indexOf(e) >= before && e.type === 'message' && e.message.role === 'assistant');
    const turn = s.events().slice(before);
    const parts = turn.filter((e): e is Part => e.type === 'message_part');
    expect(parts.map((p) => p.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(new Set(parts.map((p) => p.generation)).size).toBe(1);
    const reply = turn.find((e) => e.type === 'message' && e.message.role === 'assistant') as Extract<StreamEvent, { type: 'message' }>;
    expect(parts.map((p) => p.text).join('')).toBe(reply.message.content);
    // Every event carries a cursor; parts cross replicas in windows, not one notice each.
    expect(turn.every((e) => typeof e.cursor === 'string')).toBe(true);
    expect(await metricValue(a.registry, 'coderlite_chat_notices_published_total', { reason: 'parts' })).toBeLessThan(60);
    s.close();
  });

  it('resumes with a cursor on the other replica, both ways, with no duplicate and no gap', async () => {
    const { a, b, user } = await twoReplicas({ fakeTokens: 150, fakeTokenDelayMs: 10 });
    for (const [first, second] of [
      [b, a],
      [a, b],
    ] as const) {
      const chat = await chatApi(first.url, user.token).createChat(`resume from ${first === a ? 'A' : 'B'}`);
      const s1 = await openStream(first.url, user.token, chat.id);
      await s1.waitFor((e) => e.type === 'message_part' && e.seq >= 40);
      s1.close();
      await s1.closed;
      const got = s1.events();
      const cursor = got.at(-1)!.cursor!;
      const s2 = await openStream(second.url, user.token, chat.id, cursor);
      await waitReply(s2);
      const reply = replyOf(s2)!.message.content;
      const p1 = partsOf(s1);
      const p2 = partsOf(s2);
      expect(s2.events().some((e) => e.type === 'preview_reset')).toBe(false);
      // The second stream starts right after the first one's last part…
      expect(p2[0]!.seq).toBeGreaterThan(p1.at(-1)!.seq);
      for (let i = 1; i < p2.length; i++) expect(p2[i]!.seq).toBe(p2[i - 1]!.seq + 1);
      // …and together they are the reply, each piece once.
      expect(p1.map((p) => p.text).join('') + p2.map((p) => p.text).join('')).toBe(reply);
      expect(p2.at(-1)!.seq).toBe(150);
      s2.close();
    }
  });

  it('gives a late joiner of a 100k-token turn its whole text so far as one part, then the live parts', async () => {
    const { a, b, user } = await twoReplicas({ fakeTokens: 100_000, fakeTokenDelayMs: 0 });
    const chat = await chatApi(b.url, user.token).createChat('a very long answer');
    // Both join halfway: on the replica that runs the turn, and on the one that does not.
    await expect.poll(() => a.chats.parts.current(chat.id)?.seq ?? 0, { timeout: 30_000, interval: 5 }).toBeGreaterThanOrEqual(50_000);
    const late = await Promise.all([openStream(a.url, user.token, chat.id), openStream(b.url, user.token, chat.id)]);
    for (const s of late) {
      await waitReply(s, 60_000);
      const parts = partsOf(s);
      expect(parts[0]!.seq).toBeGreaterThanOrEqual(50_000);
      expect(parts.findIndex((p, i) => i > 0 && p.seq !== parts[i - 1]!.seq + 1)).toBe(-1);
      expect(parts.at(-1)!.seq).toBe(100_000);
      expect(parts.map((p) => p.text).join('')).toBe(replyOf(s)!.message.content);
      s.close();
    }
  }, 120_000);

  it('sends preview_reset when the worker is SIGKILLed mid-turn, then the re-run turn', async () => {
    const { url, db } = await createTestPool();
    const a = await startServerProcess(['--postgres-url', url, '--fake-tokens', '1000', '--fake-token-delay', '20ms', '--chat-heartbeat-interval', '200ms']);
    cleanUp(() => void a.child.kill('SIGKILL'));
    const { token } = await createTestUser({ db });
    const b = await startTestDaemon({ postgresUrl: url, chat: { fakeTokens: 5, fakeTokenDelayMs: 5, heartbeatIntervalMs: 200, staleAfterMs: 1000, maxConcurrentTurns: 0 } });
    const chat = await chatApi(b.url, token).createChat('survive a crash');
    const s = await openStream(b.url, token, chat.id);
    await s.waitFor((e) => e.type === 'message_part' && e.seq >= 10, 15_000);
    const killedGeneration = partsOf(s).at(-1)!.generation;
    a.child.kill('SIGKILL');
    await a.exited;
    // B may run turns now: the stale turn comes back to pending and B re-runs it.
    const c = await startTestDaemon({ postgresUrl: url, chat: { fakeTokens: 5, fakeTokenDelayMs: 5, heartbeatIntervalMs: 200, staleAfterMs: 1000 } });
    await waitReply(s, 20_000);
    const events = s.events();
    const reset = events.findIndex((e) => e.type === 'preview_reset');
    expect(reset).toBeGreaterThan(events.findIndex((e) => e.type === 'message_part'));
    const rerun = events.slice(reset).filter((e): e is Part => e.type === 'message_part');
    expect(rerun.length).toBeGreaterThan(0);
    expect(rerun.every((p) => p.generation > killedGeneration)).toBe(true);
    expect(rerun.map((p) => p.text).join('')).toBe(replyOf(s)!.message.content);
    expect((await getChatMessagesAfter(c.db, chat.id, 0, 10)).map((m) => m.role)).toEqual(['user', 'assistant']);
    s.close();
  });

  it('heals a stream whose notice was lost within the check period, and counts it', async () => {
    const { url } = await createTestDatabase();
    let drop = false;
    const d = await startTestDaemon(
      { postgresUrl: url, chat: { fakeTokens: 2, fakeTokenDelayMs: 1, streamCheckIntervalMs: 300 } },
      { chatStreamHooks: { notice: (_chatId, n) => !(drop && n.status === 'waiting') } },
    );
    const user = await createTestUser(d);
    const api = chatApi(d.url, user.token);
    const chat = await api.createChat('first');
    const s = await openStream(d.url, user.token, chat.id);
    await waitReply(s);
    const before = await metricValue(d.registry, 'coderlite_chat_stream_resyncs_total');
    drop = true;
    const mark = s.events().length;
    await api.send(chat.id, 'second');
    // The notice that ends the turn (with its reply) never reaches the stream; the version check finds it behind.
    await s.waitFor((e, all) => all.indexOf(e) >= mark && e.type === 'status' && e.status === 'waiting', 10_000);
    expect(s.events().slice(mark).filter((e) => e.type === 'message' && e.message.role === 'assistant')).toHaveLength(1);
    expect(await metricValue(d.registry, 'coderlite_chat_stream_resyncs_total')).toBeGreaterThan(before);
    s.close();
  });

  it('never shows users what an upstream echoed (its key, its URL); the log has it redacted', async () => {
    const key = 'sk-live-supersecretkey1234567890';
    const upstream = createServer((req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `bad key: Authorization: ${req.headers.authorization} at http://10.1.2.3:8443/internal/v1` } }));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    cleanUp(() => new Promise<void>((r) => upstream.close(() => r())));
    const lines: string[] = [];
    const { default: pino } = await import('pino');
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
    const d = await startTestDaemon({
      logger,
      chat: { provider: 'openai-compat', llmBaseUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`, llmApiKey: key, llmModel: 'm' },
    });
    const user = await createTestUser(d);
    const chat = await chatApi(d.url, user.token).createChat('leak?');
    const s = await openStream(d.url, user.token, chat.id);
    await s.waitFor((e) => e.type === 'status' && e.status === 'error');
    await s.waitFor((e) => e.type === 'error');
    const row = (await getChatByID(d.db, chat.id))!;
    const shown = JSON.stringify([s.events(), row.lastError]);
    expect(row.lastError).toBe('The model provider rejected our credentials. (HTTP 401)');
    expect(s.events().findLast((e) => e.type === 'error')).toMatchObject({ kind: 'auth', retryable: false });
    for (const secret of [key, 'supersecret', '10.1.2.3', 'Bearer']) expect(shown).not.toContain(secret);
    const logged = lines.join('');
    expect(logged).toContain('[redacted');
    expect(logged).not.toContain('supersecret');
    expect(logged).not.toContain('10.1.2.3');
    s.close();
  });
});
