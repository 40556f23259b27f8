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
  'SELECT id, chat_id, content, created_at FROM chat_queued_messages WHERE chat_id = ANY($1::uuid[]) ORDER BY id',
);

/** The queues of many chats in one read, in the order of `chatIds`, each oldest first. */
export async function getQueuedChatMessages(db: Queryable, chatIds: readonly string[]): Promise<QueuedChatMessage[][]> {
  const { rows } = await db.query<QueuedRow>(getQueuedChatMessagesQ, [chatIds]);
  const byChat = new Map(chatIds.map((id) => [id, [] as QueuedChatMessage[]]));
  for (const r of rows) byChat.get(r.chat_id)?.push(toQueued(r));
  return chatIds.map((id) => byChat.get(id)!);
}

// The queue is part of what a stream shows: removing from it bumps the chat's version.
const deleteQueuedChatMessageQ = namedQuery(
  'deleteQueuedChatMessage',
  `WITH gone AS (DELETE FROM chat_queued_messages WHERE chat_id = $1 AND id = $2 RETURNING chat_id)
   UPDATE chats SET version = version + 1 WHERE id IN (SELECT chat_id FROM gone) RETURNING version`,
);

/** The chat's new version; undefined when it holds no such queued message (never queued, deleted, or promoted). */
export async function deleteQueuedChatMessage(db: Queryable, chatId: string, id: number): Promise<number | undefined> {
  const { rows } = await db.query<{ version: string }>(deleteQueuedChatMessageQ, [chatId, id]);
  return rows[0] && Number(rows[0].version);
}
