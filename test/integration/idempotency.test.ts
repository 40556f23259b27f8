import { describe, expect, it } from 'vitest';

import { getChatMessagesAfter } from '../../src/daemon/store/messages.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';

const daemon = await startTestDaemon({ chat: { fakeTokens: 2, fakeTokenDelayMs: 0 } });
const alice = await createTestUser(daemon);
const bob = await createTestUser(daemon);

async function post(token: string, path: string, body: unknown, key?: string) {
  const res = await fetch(`${daemon.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(key !== undefined ? { 'idempotency-key': key } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, replayed: res.headers.get('idempotent-replayed'), body: (await res.json()) as Record<string, any> };
}

const waitFor = (chatId: string, status: string) =>
  expect.poll(async () => (await fetch(`${daemon.url}/api/experimental/chats/${chatId}`, { headers: { authorization: `Bearer ${alice.token}` } }).then((r) => r.json()) as { status: string }).status).toBe(status);

describe('Idempotency-Key', () => {
  it('a retried create returns the first answer and makes one chat', async () => {
    const first = await post(alice.token, '/api/experimental/chats', { message: 'hello' }, 'create-1');
    const again = await post(alice.token, '/api/experimental/chats', { message: 'hello' }, 'create-1');
    expect(first.status).toBe(201);
    expect(first.replayed).toBeNull();
    expect(again).toEqual({ ...first, replayed: 'true' });
    const list = (await fetch(`${daemon.url}/api/experimental/chats`, { headers: { authorization: `Bearer ${alice.token}` } }).then((r) => r.json())) as { chats: Array<{ id: string }> };
    expect(list.chats.filter((c) => c.id === first.body.id)).toHaveLength(1);
    expect(list.chats).toHaveLength(1);
  });

  it('a retried send, also concurrent with the first, makes one turn', async () => {
    const chat = await post(alice.token, '/api/experimental/chats', { message: 'start' });
    await waitFor(chat.body.id as string, 'waiting');
    const path = `/api/experimental/chats/${chat.body.id}/messages`;
    const answers = await Promise.all(Array.from({ length: 5 }, () => post(alice.token, path, { content: 'once' }, 'send-1')));
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([201]));
    expect(new Set(answers.map((a) => a.body.message.id))).toHaveProperty('size', 1);
    expect(answers.filter((a) => a.replayed === null)).toHaveLength(1);
    await waitFor(chat.body.id as string, 'waiting');
    const messages = await getChatMessagesAfter(daemon.db, chat.body.id as string, 0, 100);
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    // A later retry still gets the first answer, with the chat as it was then.
    const late = await post(alice.token, path, { content: 'once' }, 'send-1');
    expect(late.body).toEqual(answers.find((a) => a.replayed === null)!.body);
  });

  it('the same key with another request is 422; another user has keys of their own', async () => {
    await post(alice.token, '/api/experimental/chats', { message: 'one' }, 'reused');
    const other = await post(alice.token, '/api/experimental/chats', { message: 'two' }, 'reused');
    expect(other.status).toBe(422);
    expect(other.body.message).toMatch(/Idempotency-Key/);
    const bobs = await post(bob.token, '/api/experimental/chats', { message: 'two' }, 'reused');
    expect(bobs.status).toBe(201);
    expect(bobs.replayed).toBeNull();
  });

  it('a failed request stores nothing, so its retry is tried again', async () => {
    const first = await post(alice.token, '/api/experimental/chats/00000000-0000-4000-8000-000000000000/messages', { content: 'x' }, 'failing');
    expect(first.status).toBe(404);
    const again = await post(alice.token, '/api/experimental/chats/00000000-0000-4000-8000-000000000000/messages', { content: 'x' }, 'failing');
    expect(again.status).toBe(404);
    expect(again.replayed).toBeNull();
  });

  it('refuses a malformed key with 400', async () => {
    const res = await post(alice.token, '/api/experimental/chats', { message: 'x' }, 'has space');
    expect(res.status).toBe(400);
    const long = await post(alice.token, '/api/experimental/chats', { message: 'x' }, 'k'.repeat(256));
    expect(long.status).toBe(400);
  });
});
