import { namedQuery, type QueryOptions, type Queryable } from '../postgres/pool.js';
import type { QueuedChatMessage } from './types.js';

interface QueuedRow {
  id: string;
  chat_id: string;
  content: string;
  created_at: Date;
}

const toQueued = (r: QueuedRow): QueuedChatMessage => ({ id: Number(r.id), chatId: r.chat_id, content: r.content, createdAt: r.created_at });

// The count and the insert run under the chat's row lock (taken by the caller), so the limit holds under concurrency.
const insertQueuedChatMessageQ = namedQuery(
  'insertQueuedChatMessage',
  `INSERT INTO chat_queued_messages (chat_id, content)
   SELECT $1, to_jsonb($2::text) WHERE (SELECT count(*) FROM chat_queued_messages WHERE chat_id = $1) < $3
   RETURNING id, chat_id, content, created_at`,
);

/** Queues a message unless `limit` are already queued (then undefined). Call with the chat row locked. */
export async function insertQueuedChatMessage(tx: Queryable, chatId: string, content: string, limit: number): Promise<QueuedChatMessage | undefined> {
  const { rows } = await tx.query<QueuedRow>(insertQueuedChatMessageQ, [chatId, content, limit]);
  return rows[0] && toQueued(rows[0]);
}

const getQueuedChatMessagesQ = namedQuery(
  'getQueuedChatMessages',
  'SELECT id, chat_id, content, created_at FROM chat_queued_messages WHERE chat_id = $1 ORDER BY id',
);

export async function getQueuedChatMessages(db: Queryable, chatId: string, opts?: QueryOptions): Promise<QueuedChatMessage[]> {
  const { rows } = await db.query<QueuedRow>(getQueuedChatMessagesQ, [chatId], opts);
  return rows.map(toQueued);
}
