import { PassThrough } from 'node:stream';

import { expect, it } from 'vitest';

import { createLogger } from '../../src/daemon/observability/logger.js';
import { createDatabase } from '../../src/daemon/postgres/pool.js';
import { getChatByID } from '../../src/daemon/store/chats.js';
import { getChatMessagesAfter } from '../../src/daemon/store/messages.js';
import { chatApi } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { startStoppablePostgres } from '../helpers/pg15.js';

it('while PostgreSQL is down: 503 with Retry-After and JSON, /healthz 503; a turn that ended meanwhile is written once it is back', async () => {
  const pg = await startStoppablePostgres();
  // 60 pieces of 25 ms: the reply is still streaming when the database goes, and done before it is back.
  const lines: string[] = [];
  const destination = new PassThrough().on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const logger = createLogger({ level: 'warn', format: 'json', destination });
  const daemon = await startTestDaemon({ logger, postgresUrl: pg.url, chat: { fakeTokens: 60, fakeTokenDelayMs: 25 }, webpush: { enabled: false } });
  const user = await createTestUser(daemon);
  const api = chatApi(daemon.url, user.token);
  const chat = await api.createChat('outage');
  await expect.poll(async () => (await api.get(chat.id)).body.status).toBe('running');

  await pg.stop();
  const send = await fetch(`${daemon.url}/api/experimental/chats/${chat.id}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ content: 'during' }),
  });
  expect(send.status).toBe(503);
  expect(Number(send.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(((await send.json()) as { message: string }).message).toMatch(/database is unavailable/);
  expect((await fetch(`${daemon.url}/healthz`)).status).toBe(503);
  // The model's reply ends while the database is away: its end write is retried, and the turn stays this worker's.
  await expect.poll(() => lines.filter((l) => l.includes('ending the turn failed; retrying')).length, { timeout: 15_000 }).toBeGreaterThanOrEqual(2);
  expect(daemon.chats.worker.runningTurns()).toBe(1);

  await pg.start();
  await expect.poll(async () => (await fetch(`${daemon.url}/healthz`)).status, { timeout: 15_000 }).toBe(200);
  await expect.poll(async () => (await getChatByID(daemon.db, chat.id))?.status, { timeout: 10_000 }).toBe('waiting');
  expect((await getChatMessagesAfter(daemon.db, chat.id, 0, 10)).map((m) => m.role)).toEqual(['user', 'assistant']);
  expect(daemon.chats.worker.runningTurns()).toBe(0);
});

it('shutting down while the database is away: the running chat goes back to pending once the database allows, within the grace', async () => {
  const pg = await startStoppablePostgres();
  const lines: string[] = [];
  const destination = new PassThrough().on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const daemon = await startTestDaemon({
    logger: createLogger({ level: 'warn', format: 'json', destination }),
    postgresUrl: pg.url,
    chat: { fakeTokens: 1000, fakeTokenDelayMs: 20 },
    webpush: { enabled: false },
  });
  const user = await createTestUser(daemon);
  const api = chatApi(daemon.url, user.token);
  const chat = await api.createChat('shutdown during an outage');
  await expect.poll(async () => (await api.get(chat.id)).body.status).toBe('running');

  await pg.stop();
  const closed = daemon.close(AbortSignal.timeout(30_000));
  await expect.poll(() => lines.some((l) => l.includes('cannot hand running chats back yet')), { timeout: 15_000 }).toBe(true);
  await pg.start();
  await closed;
  const db = createDatabase({ connectionString: pg.url, max: 1 });
  try {
    expect((await getChatByID(db, chat.id))?.status).toBe('pending');
  } finally {
    await db.close();
  }
});
