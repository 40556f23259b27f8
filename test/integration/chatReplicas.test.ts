import { describe, expect, it } from 'vitest';

import { getChatByID } from '../../src/daemon/store/chats.js';
import { getChatMessagesAfter } from '../../src/daemon/store/messages.js';
import { chatApi, openStream } from '../helpers/chatClient.js';
import { startServerProcess } from '../helpers/cli.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase, createTestPool } from '../helpers/db.js';

describe('replicas on one PostgreSQL', () => {
  it('streams a turn run by replica A to a client of replica B, and an interrupt sent to B stops it on A', async () => {
    const { url } = await createTestDatabase();
    const a = await startTestDaemon({ postgresUrl: url, chat: { fakeTokens: 200, fakeTokenDelayMs: 25 } });
    // B serves the API only, so the turn can only run on A.
    const b = await startTestDaemon({ postgresUrl: url, chat: { fakeTokens: 200, fakeTokenDelayMs: 25, maxConcurrentTurns: 0 } });
    const user = await createTestUser(a);
    const chat = await chatApi(b.url, user.token).createChat('across replicas');
    const s = await openStream(b.url, user.token, chat.id);
    await s.waitFor((e) => e.type === 'status' && e.status === 'running');
    expect(a.chats.worker.runningTurns()).toBe(1);
    expect((await getChatByID(a.db, chat.id))!.workerId).toBe(a.chats.worker.id);

    expect((await chatApi(b.url, user.token).interrupt(chat.id)).status).toBe(200);
    await expect.poll(() => a.chats.worker.runningTurns()).toBe(0);
    await s.waitFor((e) => e.type === 'status' && e.status === 'waiting');
    expect((await getChatByID(a.db, chat.id))!.status).toBe('waiting');
    expect((await getChatMessagesAfter(a.db, chat.id, 0, 10)).map((m) => m.role)).toEqual(['user']);

    // The next turn, also on A, reaches B's client as status and message events.
    await chatApi(b.url, user.token).send(chat.id, 'again');
    await s.waitFor((e) => e.type === 'message' && e.message.role === 'assistant');
    await s.waitFor((e, all) => e.type === 'status' && e.status === 'waiting' && all.indexOf(e) > all.findIndex((x) => x.type === 'message' && x.message.role === 'assistant'));
    s.close();
  });

  it('lets B finish a turn of a replica killed mid-turn once its heartbeat is stale', async () => {
    const { url, db } = await createTestPool();
    const a = await startServerProcess([
      '--postgres-url', url, '--fake-tokens', '1000', '--fake-token-delay', '50ms', '--chat-heartbeat-interval', '200ms',
    ]);
    try {
      const { user, token } = await createTestUser({ db });
      const chat = await chatApi(a.url, token).createChat('survive a crash');
      await expect.poll(async () => (await getChatByID(db, chat.id))!.status, { timeout: 15_000 }).toBe('running');
      const runner = (await getChatByID(db, chat.id))!.workerId;
      expect(runner).toContain(`-${a.child.pid}-`);
      a.child.kill('SIGKILL');
      await a.exited;

      const b = await startTestDaemon({ postgresUrl: url, chat: { fakeTokens: 2, fakeTokenDelayMs: 1, heartbeatIntervalMs: 200, staleAfterMs: 1000 } });
      const s = await openStream(b.url, token, chat.id);
      await s.waitFor((e) => e.type === 'message' && e.message.role === 'assistant', 20_000);
      await s.waitFor((e) => e.type === 'status' && e.status === 'waiting');
      const after = (await getChatByID(db, chat.id))!;
      expect(after.status).toBe('waiting');
      expect(after.ownerId).toBe(user.id);
      s.close();
    } finally {
      a.child.kill('SIGKILL');
    }
  });

  it('returns running turns to pending on graceful shutdown, and a restarted daemon completes them', async () => {
    const { url, db } = await createTestPool();
    const first = await startTestDaemon({ postgresUrl: url, chat: { fakeTokens: 1000, fakeTokenDelayMs: 50 } });
    const { token } = await createTestUser(first);
    const api = chatApi(first.url, token);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await api.createChat(`long turn ${i}`)).id);
    await expect.poll(() => first.chats.worker.runningTurns()).toBe(3);
    await first.close();
    for (const id of ids) expect((await getChatByID(db, id))!.status).toBe('pending');

    const second = await startTestDaemon({ postgresUrl: url, chat: { fakeTokens: 2, fakeTokenDelayMs: 1 } });
    for (const id of ids) {
      await expect.poll(async () => (await getChatByID(db, id))!.status).toBe('waiting');
      expect((await getChatMessagesAfter(second.db, id, 0, 10)).map((m) => m.role)).toEqual(['user', 'assistant']);
    }
  });
});
