import { namedQuery, type QueryOptions, type Queryable } from '../postgres/pool.js';
import type { ChatMessage, ChatRole } from './types.js';

interface MessageRow {
  id: string;
  chat_id: string;
  role: ChatRole;
  content: string;
  created_at: Date;
}

// bigserial arrives as a string; stream cursors stay far below 2^53.
const toMessage = (r: MessageRow): ChatMessage => ({ id: Number(r.id), chatId: r.chat_id, role: r.role, content: r.content, createdAt: r.created_at });

const insertChatMessageQ = namedQuery(
  'insertChatMessage',
  'INSERT INTO chat_messages (chat_id, role, content) VALUES ($1, $2, to_jsonb($3::text)) RETURNING id, chat_id, role, content, created_at',
);

export async function insertChatMessage(db: Queryable, chatId: string, role: ChatRole, content: string): Promise<ChatMessage> {
  const { rows } = await db.query<MessageRow>(insertChatMessageQ, [chatId, role, content]);
  return toMessage(rows[0]!);
}

const getChatMessagesAfterQ = namedQuery(
  'getChatMessagesAfter',
  'SELECT id, chat_id, role, content, created_at FROM chat_messages WHERE chat_id = $1 AND id > $2 ORDER BY id LIMIT $3',
);

export async function getChatMessagesAfter(db: Queryable, chatId: string, afterId: number, limit: number, opts?: QueryOptions): Promise<ChatMessage[]> {
  const { rows } = await db.query<MessageRow>(getChatMessagesAfterQ, [chatId, afterId, limit], opts);
  return rows.map(toMessage);
}

const getLastChatMessageByRoleQ = namedQuery(
  'getLastChatMessageByRole',
  'SELECT id, chat_id, role, content, created_at FROM chat_messages WHERE chat_id = $1 AND role = $2 ORDER BY id DESC LIMIT 1',
);

export async function getLastChatMessageByRole(db: Queryable, chatId: string, role: ChatRole): Promise<ChatMessage | undefined> {
  const { rows } = await db.query<MessageRow>(getLastChatMessageByRoleQ, [chatId, role]);
  return rows[0] && toMessage(rows[0]);
}

const getLatestChatMessageIDQ = namedQuery('getLatestChatMessageID', 'SELECT coalesce(max(id), 0) AS id FROM chat_messages WHERE chat_id = $1');

/** The newest message id of a chat (0 when it has none): the stream cursor a catch-up reads up to. */
export async function getLatestChatMessageID(db: Queryable, chatId: string): Promise<number> {
  const { rows } = await db.query<{ id: string }>(getLatestChatMessageIDQ, [chatId]);
  return Number(rows[0]!.id);
}
