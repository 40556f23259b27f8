import { namedQuery, type QueryOptions, type Queryable } from '../postgres/pool.js';
import type { QueuedChatMessage } from './types.js';

interface QueuedRow {
  id: string;
  chat_id: string;
  content: string;
  created_at: Date;
}

const toQueued = (r: QueuedRow): QueuedChatMessage => ({ id: Number(r.id), chatId: r.chat_id, content: r.content, createdAt: r.created_at });

const getQueuedChatMessagesQ = namedQuery(
  'getQueuedChatMessages',
  'SELECT id, chat_id, content, created_at FROM chat_queued_messages WHERE chat_id = $1 ORDER BY id',
);

export async function getQueuedChatMessages(db: Queryable, chatId: string, opts?: QueryOptions): Promise<QueuedChatMessage[]> {
  const { rows } = await db.query<QueuedRow>(getQueuedChatMessagesQ, [chatId], opts);
  return rows.map(toQueued);
}

const deleteQueuedChatMessageQ = namedQuery('deleteQueuedChatMessage', 'DELETE FROM chat_queued_messages WHERE chat_id = $1 AND id = $2');

/** False when the chat holds no such queued message (never queued, deleted, or already promoted to a turn). */
export async function deleteQueuedChatMessage(db: Queryable, chatId: string, id: number): Promise<boolean> {
  return ((await db.query(deleteQueuedChatMessageQ, [chatId, id])).rowCount ?? 0) > 0;
}
