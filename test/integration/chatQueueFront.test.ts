import { describe, expect, it } from 'vitest';

import { getChatMessagesAfter } from '../../src/daemon/store/messages.js';
import { getQueuedChatMessages } from '../../src/daemon/store/queue.js';
import { chatApi, openStream } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase } from '../helpers/db.js';

const slow = { fakeTokens: 2000, fakeTokenDelayMs: 10 };

describe('the queue: promote and busy_behavior "interrupt"', () => {
  it('promotes a queued message: the running turn (on another replica) stops keeping its partial answer, then the promoted one runs', async () => {
    const { url } = await createTestDatabase();
    const a = await startTestDaemon({ postgresUrl: url, chat: slow });
    const b = await startTestDaemon({ postgresUrl: url, chat: { ...slow, maxConcurrentTurns: 0 } });
    const { token } = await createTestUser(a);
    const api = chatApi(b.url, token);
    const chat = await api.createChat('first');
    // Parts are seen on the replica running the turn.
    const s = await openStream(a.url, token, chat.id);
    await s.waitFor((e) => e.type === 'message_part');
    const queued = [];
    for (const content of ['second', 'third']) queued.push((await api.send(chat.id, content)).body.queued_message.id as number);

    const promoted = await api.call('POST', `/api/v2/chats/${chat.id}/queue/${queued[1]!}/promote`);
    expect(promoted.status).toBe(200);
    await expect.poll(async () => (await getChatMessagesAfter(a.db, chat.id, 0, 10)).map((m) => m.role), { timeout: 15_000 }).toEqual(['user', 'assistant', 'user']);
    const [, partial, next] = await getChatMessagesAfter(a.db, chat.id, 0, 10);
    expect(partial!.content.length).toBeGreaterThan(0);
    expect(partial!.content.split(' ').length).toBeLessThan(slow.fakeTokens);
    expect(next!.content).toBe('third');
    expect((await getQueuedChatMessages(a.db, [chat.id]))[0]!.map((q) => q.content)).toEqual(['second']);
    await expect.poll(() => a.chats.worker.runningTurns(), { timeout: 15_000 }).toBe(1);

    // An interrupt, unlike a promote, keeps nothing of the turn and leaves the queue waiting.
    expect((await api.interrupt(chat.id)).status).toBe(200);
    await expect.poll(() => a.chats.worker.runningTurns(), { timeout: 15_000 }).toBe(0);
    expect((await getChatMessagesAfter(a.db, chat.id, 0, 10)).map((m) => m.content)).toEqual(['first', partial!.content, 'third']);
    // Promoting on a waiting chat starts the message at once.
    const [left] = (await getQueuedChatMessages(a.db, [chat.id]))[0]!;
    const started = await api.call('POST', `/api/v2/chats/${chat.id}/queue/${left!.id}/promote`);
    expect(started.body).toMatchObject({ status: 'pending' });
    await expect.poll(async () => (await getChatMessagesAfter(a.db, chat.id, 0, 10)).at(-1)!.content, { timeout: 15_000 }).toBe('second');
    expect((await getQueuedChatMessages(a.db, [chat.id]))[0]).toEqual([]);
    await api.interrupt(chat.id);
    s.close();
  });

  it('a send with busy_behavior "interrupt" goes first in line and runs next, after the partial answer', async () => {
    const d = await startTestDaemon({ chat: slow });
    const { token } = await createTestUser(d);
    const other = await createTestUser(d);
    const api = chatApi(d.url, token);
    const chat = await api.createChat('long one');
    const s = await openStream(d.url, token, chat.id);
    await s.waitFor((e) => e.type === 'message_part');
    await api.send(chat.id, 'behind');
    const res = await api.call('POST', `/api/v2/chats/${chat.id}/messages`, { content: 'now!', busy_behavior: 'interrupt' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ queued: true, queued_message: { content: 'now!' } });
    await expect.poll(async () => (await getChatMessagesAfter(d.db, chat.id, 0, 10)).map((m) => m.role), { timeout: 15_000 }).toEqual(['user', 'assistant', 'user']);
    expect((await getChatMessagesAfter(d.db, chat.id, 0, 10)).at(-1)!.content).toBe('now!');
    expect((await getQueuedChatMessages(d.db, [chat.id]))[0]!.map((q) => q.content)).toEqual(['behind']);
    await api.interrupt(chat.id);
    await expect.poll(() => d.chats.worker.runningTurns(), { timeout: 15_000 }).toBe(0);

    // On a chat with nothing running it is a plain send; unknown ids and other users' chats are 404.
    const idle = await api.call('POST', `/api/v2/chats/${chat.id}/messages`, { content: 'idle', busy_behavior: 'interrupt' });
    expect(idle.status).toBe(202);
    await api.interrupt(chat.id);
    expect((await api.call('POST', `/api/v2/chats/${chat.id}/queue/999999/promote`)).status).toBe(404);
    expect((await chatApi(d.url, other.token).call('POST', `/api/v2/chats/${chat.id}/queue/1/promote`)).status).toBe(404);
    const withKey = await fetch(`${d.url}/api/v2/chats/${chat.id}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': 'k1' },
      body: JSON.stringify({ content: 'x', busy_behavior: 'interrupt' }),
    });
    expect(withKey.status).toBe(400);
    s.close();
  });
});
