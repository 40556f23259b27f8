import { namedQuery, type QueryOptions, type Queryable } from '../postgres/pool.js';
import type { Chat, ChatMessage, ChatRole, ChatStatus } from './types.js';

interface ChatRow {
  id: string;
  owner_id: string;
  title: string;
  status: ChatStatus;
  worker_id: string | null;
  started_at: Date | null;
  heartbeat_at: Date | null;
  last_model_config_id: string | null;
  last_error: string | null;
  archived: boolean;
  created_at: Date;
  updated_at: Date;
}

const chatColumns =
  'id, owner_id, title, status, worker_id, started_at, heartbeat_at, last_model_config_id, last_error, archived, created_at, updated_at';

export const toChat = (r: ChatRow): Chat => ({
  id: r.id,
  ownerId: r.owner_id,
  title: r.title,
  status: r.status,
  workerId: r.worker_id,
  startedAt: r.started_at,
  heartbeatAt: r.heartbeat_at,
  lastModelConfigId: r.last_model_config_id,
  lastError: r.last_error,
  archived: r.archived,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const insertChatQ = namedQuery(
  'insertChat',
  `INSERT INTO chats (owner_id, title, status, last_model_config_id) VALUES ($1, $2, 'pending', $3) RETURNING ${chatColumns}`,
);

export async function insertChat(db: Queryable, ownerId: string, title: string, modelConfigId: string | null): Promise<Chat> {
  const { rows } = await db.query<ChatRow>(insertChatQ, [ownerId, title, modelConfigId]);
  return toChat(rows[0]!);
}

const getChatByIDQ = namedQuery('getChatByID', `SELECT ${chatColumns} FROM chats WHERE id = $1`);

export async function getChatByID(db: Queryable, id: string, opts?: QueryOptions): Promise<Chat | undefined> {
  const { rows } = await db.query<ChatRow>(getChatByIDQ, [id], opts);
  return rows[0] && toChat(rows[0]);
}

// The newest message id comes along: notices say which message preceded theirs, so subscribers can tell a gap.
const lockChatByIDQ = namedQuery(
  'lockChatByID',
  `SELECT ${chatColumns}, (SELECT coalesce(max(m.id), 0) FROM chat_messages m WHERE m.chat_id = chats.id) AS last_message_id
     FROM chats WHERE id = $1 FOR UPDATE`,
);

/** Inside a transaction: the chat row, locked until commit, and the id of its newest message (0 when none). */
export async function lockChatByID(tx: Queryable, id: string): Promise<{ chat: Chat; lastMessageId: number } | undefined> {
  const { rows } = await tx.query<ChatRow & { last_message_id: string }>(lockChatByIDQ, [id]);
  return rows[0] && { chat: toChat(rows[0]), lastMessageId: Number(rows[0].last_message_id) };
}

interface MessageColumns {
  message_id: string | null;
  message_content: string | null;
  message_created_at: Date | null;
}

const messageFrom = (chatId: string, role: ChatRole, r: MessageColumns): ChatMessage | undefined =>
  r.message_id === null ? undefined : { id: Number(r.message_id), chatId, role, content: r.message_content!, createdAt: r.message_created_at! };

const startChatTurnQ = namedQuery(
  'startChatTurn',
  `WITH m AS (INSERT INTO chat_messages (chat_id, role, content) VALUES ($1, 'user', to_jsonb($2::text)) RETURNING id, content, created_at),
        c AS (UPDATE chats SET status = 'pending', last_error = NULL, worker_id = NULL, updated_at = now() WHERE id = $1 RETURNING ${chatColumns})
   SELECT c.*, m.id AS message_id, m.content AS message_content, m.created_at AS message_created_at FROM c, m`,
);

/** With the chat locked: adds the user's message and makes the chat pending, in one statement. */
export async function startChatTurn(tx: Queryable, chatId: string, content: string): Promise<{ chat: Chat; message: ChatMessage }> {
  const { rows } = await tx.query<ChatRow & MessageColumns>(startChatTurnQ, [chatId, content]);
  return { chat: toChat(rows[0]!), message: messageFrom(chatId, 'user', rows[0]!)! };
}

// Pops the oldest queued message (when promoting) into the conversation and sets the next status, in one statement.
const endChatTurnQ = namedQuery(
  'endChatTurn',
  `WITH q AS (DELETE FROM chat_queued_messages
               WHERE $2::boolean AND id = (SELECT id FROM chat_queued_messages WHERE chat_id = $1 ORDER BY id LIMIT 1)
               RETURNING content),
        m AS (INSERT INTO chat_messages (chat_id, role, content) SELECT $1, 'user', content FROM q RETURNING id, content, created_at),
        c AS (UPDATE chats SET status = CASE WHEN EXISTS (SELECT 1 FROM q) THEN 'pending' WHEN $3::text IS NOT NULL THEN 'error' ELSE 'waiting' END,
                               last_error = $3, worker_id = NULL, updated_at = now()
               WHERE id = $1 RETURNING ${chatColumns})
   SELECT c.*, m.id AS message_id, m.content AS message_content, m.created_at AS message_created_at FROM c LEFT JOIN m ON true`,
);

/**
 * With the chat locked, at the end of a turn: promote the next queued message (only when `promote`) and set the
 * status — `pending` with a promoted message, else `error` when `lastError`, else `waiting`.
 */
export async function endChatTurn(tx: Queryable, chatId: string, promote: boolean, lastError: string | null): Promise<{ chat: Chat; promoted?: ChatMessage }> {
  const { rows } = await tx.query<ChatRow & MessageColumns>(endChatTurnQ, [chatId, promote, lastError]);
  return { chat: toChat(rows[0]!), promoted: messageFrom(chatId, 'user', rows[0]!) };
}

// Keyset pagination: newest first, after the chat named by the cursor.
const listChatsByOwnerQ = namedQuery(
  'listChatsByOwner',
  `SELECT ${chatColumns} FROM chats
    WHERE owner_id = $1 AND NOT archived
      AND ($2::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM chats WHERE id = $2 AND owner_id = $1))
    ORDER BY created_at DESC, id DESC
    LIMIT $3`,
);

export async function listChatsByOwner(db: Queryable, ownerId: string, afterId: string | null, limit: number): Promise<Chat[]> {
  const { rows } = await db.query<ChatRow>(listChatsByOwnerQ, [ownerId, afterId, limit]);
  return rows.map(toChat);
}

const setChatStatusQ = namedQuery(
  'setChatStatus',
  `UPDATE chats SET status = $2, last_error = $3, worker_id = NULL, updated_at = now() WHERE id = $1 RETURNING ${chatColumns}`,
);

/** Inside the transaction that holds the row lock: the next status, clearing the worker. */
export async function setChatStatus(tx: Queryable, id: string, status: ChatStatus, lastError: string | null): Promise<Chat> {
  const { rows } = await tx.query<ChatRow>(setChatStatusQ, [id, status, lastError]);
  return toChat(rows[0]!);
}

// SKIP LOCKED: replicas claiming at once each take different chats instead of queueing on the same rows.
const acquirePendingChatsQ = namedQuery(
  'acquirePendingChats',
  `UPDATE chats SET status = 'running', worker_id = $1, started_at = now(), heartbeat_at = now(), last_error = NULL, updated_at = now()
    WHERE id IN (SELECT id FROM chats WHERE status = 'pending' AND NOT archived ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING ${chatColumns}`,
);

/** Claims up to `limit` pending chats for this worker, oldest first. */
export async function acquirePendingChats(db: Queryable, workerId: string, limit: number): Promise<Chat[]> {
  const { rows } = await db.query<ChatRow>(acquirePendingChatsQ, [workerId, limit]);
  return rows.map(toChat);
}

const heartbeatChatsQ = namedQuery(
  'heartbeatChats',
  `UPDATE chats SET heartbeat_at = now() WHERE id = ANY($2::uuid[]) AND worker_id = $1 AND status = 'running' RETURNING id`,
);

/** Refreshes the heartbeat of the chats this worker still runs and returns their ids: a missing id was taken away. */
export async function heartbeatChats(db: Queryable, workerId: string, ids: string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>(heartbeatChatsQ, [workerId, ids]);
  return new Set(rows.map((r) => r.id));
}

const recoverStaleChatsQ = namedQuery(
  'recoverStaleChats',
  `UPDATE chats SET status = 'pending', worker_id = NULL, updated_at = now()
    WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => $1)
    RETURNING ${chatColumns}`,
);

/** Chats left `running` by a replica whose heartbeat stopped go back to `pending`. */
export async function recoverStaleChats(db: Queryable, staleAfterSeconds: number): Promise<Chat[]> {
  const { rows } = await db.query<ChatRow>(recoverStaleChatsQ, [staleAfterSeconds]);
  return rows.map(toChat);
}

const releaseWorkerChatsQ = namedQuery(
  'releaseWorkerChats',
  `UPDATE chats SET status = 'pending', worker_id = NULL, updated_at = now()
    WHERE worker_id = $1 AND status = 'running'
    RETURNING ${chatColumns}`,
);

/** On shutdown: the worker's running chats go back to `pending` for another replica. */
export async function releaseWorkerChats(db: Queryable, workerId: string): Promise<Chat[]> {
  const { rows } = await db.query<ChatRow>(releaseWorkerChatsQ, [workerId]);
  return rows.map(toChat);
}

const archiveChatQ = namedQuery(
  'archiveChat',
  `UPDATE chats SET archived = true, status = CASE WHEN status IN ('running', 'pending') THEN 'waiting' ELSE status END,
          worker_id = NULL, updated_at = now()
    WHERE id = $1 RETURNING ${chatColumns}`,
);

export async function archiveChat(db: Queryable, id: string): Promise<Chat | undefined> {
  const { rows } = await db.query<ChatRow>(archiveChatQ, [id]);
  return rows[0] && toChat(rows[0]);
}

const countChatsByStatusQ = namedQuery('countChatsByStatus', 'SELECT status, count(*)::int AS n FROM chats WHERE NOT archived GROUP BY status');

export async function countChatsByStatus(db: Queryable): Promise<Record<string, number>> {
  const { rows } = await db.query<{ status: string; n: number }>(countChatsByStatusQ);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}
