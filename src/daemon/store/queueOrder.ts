import { namedQuery, type Queryable } from '../postgres/pool.js';

export type QueueToFrontOutcome = 'archived' | 'full' | 'not_found' | 'idle' | 'queued' | 'started';

export interface QueueToFrontResult {
  outcome: QueueToFrontOutcome;
  /** The chat's status after the call. */
  status: string;
  /** The message now first in line (queued), or the one that started (started). */
  head?: { id: number; content: string; createdAt: Date };
  /** For `started`: the user message the head became, and the newest message before it. */
  messageId?: number;
  prevMessageId?: number;
}

const queueToFrontQ = namedQuery('chatQueueToFront', 'SELECT * FROM chat_queue_to_front($1, $2, $3, $4, $5)');

/**
 * Puts queued message `queuedId`, or a new message `content`, first in the chat's queue (authorizing as `ownerId`);
 * undefined when the chat is not the owner's.
 */
export async function queueToFront(
  db: Queryable,
  chatId: string,
  ownerId: string,
  what: { queuedId: number } | { content: string },
  queueLimit: number,
): Promise<QueueToFrontResult | undefined> {
  const queuedId = 'queuedId' in what ? what.queuedId : null;
  const content = 'content' in what ? what.content : null;
  const { rows } = await db.query<{
    outcome: QueueToFrontOutcome;
    status: string;
    head_id: string | null;
    head_content: string | null;
    head_created_at: Date | null;
    message_id: string | null;
    prev_message_id: string | null;
  }>(queueToFrontQ, [chatId, ownerId, queuedId, content, queueLimit]);
  const r = rows[0];
  if (!r) return undefined;
  return {
    outcome: r.outcome,
    status: r.status,
    ...(r.head_id !== null ? { head: { id: Number(r.head_id), content: r.head_content!, createdAt: r.head_created_at! } } : {}),
    ...(r.message_id !== null ? { messageId: Number(r.message_id), prevMessageId: Number(r.prev_message_id) } : {}),
  };
}
