import { expect, it } from 'vitest';

import { getChatMessagesAfter } from '../../src/daemon/store/messages.js';
import { chatApi } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';

it('after an interrupt leaves messages queued, the next send goes behind them: messages run in the order they were sent', async () => {
  const daemon = await startTestDaemon({ chat: { fakeTokens: 200, fakeTokenDelayMs: 10 } });
  const user = await createTestUser(daemon);
  const api = chatApi(daemon.url, user.token);
  const chat = await api.createChat('first');
  await expect.poll(async () => (await api.get(chat.id)).body.status).toBe('running');
  expect((await api.send(chat.id, 'second')).status).toBe(202);
  expect((await api.interrupt(chat.id)).body.status).toBe('waiting');

  const third = await api.send(chat.id, 'third');
  expect(third.status).toBe(202);
  expect(third.body.queued_message.content).toBe('third');
  // The oldest queued message started, on this replica's worker.
  expect(third.body.chat.status).toBe('running');
  // Both queued messages run, oldest first.
  await expect.poll(async () => (await getChatMessagesAfter(daemon.db, chat.id, 0, 100)).filter((m) => m.role === 'user').map((m) => m.content), { timeout: 20_000 }).toEqual([
    'first',
    'second',
    'third',
  ]);
  await expect.poll(async () => (await api.get(chat.id)).body.status, { timeout: 20_000 }).toBe('waiting');
});
