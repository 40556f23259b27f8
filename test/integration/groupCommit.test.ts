import { describe, expect, it } from 'vitest';

import { StatementBatcher } from '../../src/daemon/postgres/batcher.js';
import { acquirePendingChats, archiveChat, createChats, endChatTurns, sendChatMessages, setChatStatus, type SendInput } from '../../src/daemon/store/chats.js';
import { getChatMessagesAfter } from '../../src/daemon/store/messages.js';
import { createUserWithToken } from '../../src/daemon/users/service.js';
import { createTestPool } from '../helpers/db.js';

const { db } = await createTestPool();
const { user: alice } = await createUserWithToken(db, 'alice');
const { user: bob } = await createUserWithToken(db, 'bob');

async function newChat(ownerId: string) {
  const [out] = await createChats(db, [{ ownerId, title: 'title', modelConfigId: null, message: 'question' }]);
  if (!out || out.replay) throw new Error('no chat created');
  return out.chat;
}

async function idleChat(ownerId: string) {
  return setChatStatus(db, (await newChat(ownerId)).id, 'waiting', null);
}

describe('group commit of sends and turn ends (one statement for many)', () => {
  it('sends keep their order per chat, each authorized; a keyed send replays its result; a send that changed nothing gives its key back', async () => {
    const a = await idleChat(alice.id);
    const b = await idleChat(alice.id);
    const bobs = await idleChat(bob.id);
    const key = { key: 'k1', fingerprint: 'fp1' };
    const out = await sendChatMessages(
      db,
      [
        { chatId: a.id, ownerId: alice.id, content: 'one' },
        { chatId: bobs.id, ownerId: alice.id, content: 'not yours' },
        { chatId: a.id, ownerId: alice.id, content: 'two', idempotency: key },
        { chatId: b.id, ownerId: alice.id, content: 'three' },
      ],
      20,
    );
    const outcomes = out.map((o) => (o.replay ? 'replay' : o.sent?.outcome));
    expect(outcomes).toEqual(['started', undefined, 'queued', 'started']);
    const queued = out[2]!.replay ? undefined : out[2]!.sent;

    const [again] = await sendChatMessages(db, [{ chatId: a.id, ownerId: alice.id, content: 'two', idempotency: key }], 20);
    expect(again!.replay?.fingerprint).toBe('fp1');
    expect(again!.replay?.result).toEqual(queued);

    await archiveChat(db, b.id);
    const [archived] = await sendChatMessages(db, [{ chatId: b.id, ownerId: alice.id, content: 'x', idempotency: { key: 'k2', fingerprint: 'fp2' } }], 20);
    expect(archived!.replay ? 'replay' : archived!.sent?.outcome).toBe('archived');
    const [retried] = await sendChatMessages(db, [{ chatId: b.id, ownerId: alice.id, content: 'x', idempotency: { key: 'k2', fingerprint: 'fp2' } }], 20);
    expect(retried!.replay).toBeUndefined();
  });

  it('a key stored before group commit (an answer, no result) still replays that answer', async () => {
    const chat = await idleChat(alice.id);
    const body = { queued: false, message: { id: 1 } };
    await db.query({ name: 'testOldKey', text: 'INSERT INTO idempotency_keys (user_id, key, fingerprint, status, response) VALUES ($1, $2, $3, 201, $4)' }, [
      alice.id,
      'old',
      'fp-old',
      JSON.stringify(body),
    ]);
    const [out] = await sendChatMessages(db, [{ chatId: chat.id, ownerId: alice.id, content: 'hi', idempotency: { key: 'old', fingerprint: 'fp-old' } }], 20);
    expect(out!.replay).toEqual({ fingerprint: 'fp-old', response: { status: 201, body } });
    expect((await getChatMessagesAfter(db, chat.id, 0, 10)).map((m) => m.content)).toEqual(['question']);
  });

  it('one failing send (its owner deleted: the key cannot be stored) fails alone; the others of its statement go through', async () => {
    const chats = await Promise.all([idleChat(alice.id), idleChat(alice.id)]);
    const gone = '00000000-0000-4000-8000-000000000000';
    const sends = new StatementBatcher((inputs: SendInput[]) => sendChatMessages(db, inputs, 20), { maxItems: 100 });
    const before = db.stats().queries.sendChatMessages ?? 0;
    const results = await Promise.allSettled([
      sends.submit({ chatId: chats[0]!.id, ownerId: alice.id, content: 'first' }),
      sends.submit({ chatId: chats[1]!.id, ownerId: gone, content: 'orphan', idempotency: { key: 'k', fingerprint: 'f' } }),
      sends.submit({ chatId: chats[1]!.id, ownerId: alice.id, content: 'third' }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(results.map((r) => (r.status === 'fulfilled' && !r.value.replay ? r.value.sent?.outcome : 'failed'))).toEqual(['started', 'failed', 'started']);
    // One statement for the three, then one each.
    expect((db.stats().queries.sendChatMessages ?? 0) - before).toBe(4);
    expect((await getChatMessagesAfter(db, chats[1]!.id, 0, 10)).map((m) => m.content)).toEqual(['question', 'third']);
  });

  it('turn ends in one statement: each stores its reply or error; a chat no longer the worker’s is left alone', async () => {
    // The sends above left chats pending: they are not this test's.
    await db.query({ name: 'testSettle', text: "UPDATE chats SET status = 'waiting' WHERE status = 'pending'" });
    for (let i = 0; i < 3; i++) await newChat(alice.id);
    const mine = await acquirePendingChats(db, 'w1', 2, 10);
    const theirs = await acquirePendingChats(db, 'w2', 1, 10);
    expect(mine).toHaveLength(2);
    expect(theirs).toHaveLength(1);
    const [x, y] = mine.map((m) => m.chat.id);
    const z = theirs[0]!.chat.id;
    const out = await endChatTurns(db, 'w1', [
      { chatId: x!, text: 'answer', error: undefined },
      { chatId: z, text: 'not mine', error: undefined },
      { chatId: y!, text: undefined, error: { message: 'The model call failed.', kind: 'generic' } },
    ]);
    expect(out[0]?.chat.status).toBe('waiting');
    expect(out[0]?.added.map((m) => [m.role, m.content])).toEqual([['assistant', 'answer']]);
    expect(out[1]).toBeUndefined();
    expect(out[2]?.chat).toMatchObject({ status: 'error', lastError: 'The model call failed.', lastErrorKind: 'generic' });
    expect((await getChatMessagesAfter(db, z, 0, 10)).map((m) => m.role)).toEqual(['user']);
  });
});
