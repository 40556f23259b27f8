import { PassThrough } from 'node:stream';

import pg from 'pg';
import { describe, expect, it } from 'vitest';

import { streamChannel, type StreamEvent } from '../../src/daemon/chat/events.js';
import type { StreamHooks, StreamStore } from '../../src/daemon/chat/stream.js';
import { createLogger } from '../../src/daemon/observability/logger.js';
import { getChatByID, setChatStatus } from '../../src/daemon/store/chats.js';
import { insertChatMessage } from '../../src/daemon/store/messages.js';
import type { Chat } from '../../src/daemon/store/types.js';
import { chatApi, openStream } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';

/** A logger whose warnings the test can read. */
function capturingLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new PassThrough();
  stream.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l) lines.push(JSON.parse(l) as { level: number; msg: string });
  });
  return { logger: createLogger({ level: 'warn', format: 'json', destination: stream }), warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg) };
}

const hooks: { beforeArm?: (chat: Chat) => Promise<void>; afterArm?: (chat: Chat) => Promise<void> } = {};
let failReread = false;
const log = capturingLogger();
const daemon = await startTestDaemon({
  logger: log.logger,
  chat: { fakeTokens: 1, fakeTokenDelayMs: 0, controlReadTimeoutMs: 200 },
}, {
  chatStreamHooks: {
    beforeArm: (chat) => hooks.beforeArm?.(chat) ?? Promise.resolve(),
    afterArm: (chat) => hooks.afterArm?.(chat) ?? Promise.resolve(),
  } satisfies StreamHooks,
  chatStreamStore: (real): StreamStore => ({
    ...real,
    getChatByID: (id, opts) => (failReread ? Promise.reject(new Error('injected re-read failure')) : real.getChatByID(id, opts)),
  }),
});
const user = await createTestUser(daemon);
const api = chatApi(daemon.url, user.token);

async function waitingChat(): Promise<string> {
  const chat = await api.createChat('setup');
  await expect.poll(async () => (await api.get(chat.id)).body.status).toBe('waiting');
  return chat.id;
}

/** What another replica does: commit a status change, then publish its notice. */
async function commitStatus(chatId: string, lastError: string): Promise<void> {
  await daemon.db.tx((tx) => setChatStatus(tx, chatId, 'error', lastError));
  await daemon.pubsub.publish(streamChannel(chatId), JSON.stringify({ status: 'error', last_error: lastError }));
}

const sawError = (marker: string) => (e: StreamEvent) => e.type === 'status' && e.status === 'error' && e.last_error === marker;

describe('subscribeAuthorized handshake', () => {
  it.each(['beforeArm', 'afterArm'] as const)('never loses a status change committed %s (50 runs)', async (point) => {
    const chatId = await waitingChat();
    for (let i = 0; i < 50; i++) {
      await daemon.db.tx((tx) => setChatStatus(tx, chatId, 'waiting', null));
      const marker = `${point}-${i}`;
      hooks[point] = async () => {
        hooks[point] = undefined;
        await commitStatus(chatId, marker);
      };
      const s = await openStream(daemon.url, user.token, chatId);
      await s.waitFor(sawError(marker), 5000);
      s.close();
    }
  });

  it('opens with the authorized row and a warning when the re-read fails', async () => {
    const chatId = await waitingChat();
    failReread = true;
    try {
      const s = await openStream(daemon.url, user.token, chatId);
      await s.waitFor((e) => e.type === 'status');
      expect(s.frames[0]![0]).toMatchObject({ type: 'status', status: 'waiting', last_error: null });
      expect(s.events().filter((e) => e.type === 'message').length).toBe(2);
      expect(log.warnings()).toContain('chat stream: re-reading the chat failed; starting from the authorized row');
      s.close();
    } finally {
      failReread = false;
    }
  });
});

describe('control-path reads', () => {
  /** Holds ACCESS EXCLUSIVE locks, which block even plain reads of the tables, until `release`. */
  async function lockTables(tables: string[], beforeCommit?: (c: pg.Client) => Promise<void>) {
    const c = new pg.Client(daemon.db.connectionConfig);
    await c.connect();
    await c.query('BEGIN');
    for (const t of tables) await c.query(`LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
    return {
      async release() {
        await beforeCommit?.(c);
        await c.query('COMMIT');
        await c.end();
      },
    };
  }

  it('cuts a blocked re-read and queue read at the bound for a caller without a deadline; the stream degrades, not hangs', async () => {
    const chatId = await waitingChat();
    const row = (await getChatByID(daemon.db, chatId))!;
    const lock = await lockTables(['chats', 'chat_queued_messages']);
    const events: StreamEvent[] = [];
    try {
      const sub = await daemon.chats.streams.subscribeAuthorized({}, row, 0, (e) => events.push(...e));
      expect(events[0]).toMatchObject({ type: 'status', status: 'waiting', last_error: null });
      expect(events.filter((e) => e.type === 'message').length).toBe(2);
      expect(events.some((e) => e.type === 'queue_update')).toBe(false);
      await sub.cancel();
    } finally {
      await lock.release();
    }
  });

  it("keeps a caller's own deadline, even a longer one than the bound", async () => {
    const chatId = await waitingChat();
    const row = (await getChatByID(daemon.db, chatId))!;
    // The lock holder changes the status and commits a while after the bound (200 ms) has passed.
    const lock = await lockTables(['chats'], (c) => c.query(`UPDATE chats SET status = 'error', last_error = 'committed late' WHERE id = $1`, [chatId]).then(() => undefined));
    const events: StreamEvent[] = [];
    const opening = daemon.chats.streams.subscribeAuthorized({ deadline: Date.now() + 30_000 }, row, 0, (e) => events.push(...e));
    let opened = false;
    void opening.then(() => (opened = true));
    await new Promise((r) => setTimeout(r, 600));
    // Still waiting on the lock: the 200 ms bound did not replace the caller's deadline.
    expect(opened).toBe(false);
    await lock.release();
    const sub = await opening;
    expect(events[0]).toMatchObject({ type: 'status', status: 'error', last_error: 'committed late' });
    await sub.cancel();
  });

  it("keeps a caller's shorter deadline when the bound is long", async () => {
    const slow = await startTestDaemon({ chat: { controlReadTimeoutMs: 120_000 } });
    const u = await createTestUser(slow);
    const chat = await chatApi(slow.url, u.token).createChat('x');
    await expect.poll(async () => (await getChatByID(slow.db, chat.id))!.status).toBe('waiting');
    const row = (await getChatByID(slow.db, chat.id))!;
    const c = new pg.Client(slow.db.connectionConfig);
    await c.connect();
    await c.query('BEGIN');
    await c.query('LOCK TABLE chats IN ACCESS EXCLUSIVE MODE');
    try {
      const events: StreamEvent[] = [];
      // Were the 120 s bound used instead, this would outlive the test's timeout.
      const sub = await slow.chats.streams.subscribeAuthorized({ deadline: Date.now() + 300 }, row, 0, (e) => events.push(...e));
      expect(events[0]).toMatchObject({ type: 'status', status: 'waiting', last_error: null });
      await sub.cancel();
    } finally {
      await c.query('ROLLBACK');
      await c.end();
    }
  });

  it('delivers message events while a queue refresh is stuck behind a lock', async () => {
    const chatId = await waitingChat();
    const row = (await getChatByID(daemon.db, chatId))!;
    const events: StreamEvent[] = [];
    const sub = await daemon.chats.streams.subscribeAuthorized({ deadline: Date.now() + 60_000 }, row, 0, (e) => events.push(...e));
    const lock = await lockTables(['chat_queued_messages']);
    try {
      await daemon.pubsub.publish(streamChannel(chatId), JSON.stringify({ queue_update: true }));
      const m = await insertChatMessage(daemon.db, chatId, 'user', 'while the queue is locked');
      await daemon.pubsub.publish(streamChannel(chatId), JSON.stringify({ after_message_id: m.id }));
      await expect.poll(() => events.some((e) => e.type === 'message' && e.message.id === m.id)).toBe(true);
      expect(events.some((e) => e.type === 'queue_update')).toBe(false);
    } finally {
      await lock.release();
    }
    await expect.poll(() => events.some((e) => e.type === 'queue_update')).toBe(true);
    await sub.cancel();
  });
});
