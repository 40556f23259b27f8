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

export interface PageRequest {
  chatId: string;
  afterId: number;
  limit: number;
  maxBytes: number;
}

export interface MessagePage {
  messages: ChatMessage[];
  more: boolean;
}

// Per request, rows start while the running total of content bytes is under its budget: at least one row, and at
// most one past the budget.
const getChatMessagePagesQ = namedQuery(
  'getChatMessagePages',
  `SELECT r.idx, p.id, p.chat_id, p.role, p.content, p.created_at, p.upto
     FROM unnest($1::uuid[], $2::bigint[], $3::int[], $4::bigint[]) WITH ORDINALITY AS r(chat_id, after_id, lim, max_bytes, idx)
     CROSS JOIN LATERAL (
       SELECT id, chat_id, role, content, created_at, upto FROM (
         SELECT m.id, m.chat_id, m.role, m.content, m.created_at, octet_length(m.content #>> '{}') AS size,
                sum(octet_length(m.content #>> '{}')) OVER (ORDER BY m.id) AS upto
           FROM chat_messages m WHERE m.chat_id = r.chat_id AND m.id > r.after_id ORDER BY m.id LIMIT r.lim
       ) page WHERE upto - size < r.max_bytes
     ) p
    ORDER BY r.idx, p.id`,
);

/**
 * Pages of messages, one per request in its order, in one read: the messages after `afterId`, at most `limit` of
 * them and about `maxBytes` of content (one message larger than that is a page of its own), so a reader of a long
 * history holds one bounded page at a time. `more` is false only when the history has certainly ended.
 */
export async function getChatMessagePages(db: Queryable, reqs: readonly PageRequest[]): Promise<MessagePage[]> {
  const { rows } = await db.query<MessageRow & { idx: string; upto: string }>(getChatMessagePagesQ, [
    reqs.map((r) => r.chatId),
    reqs.map((r) => r.afterId),
    reqs.map((r) => r.limit),
    reqs.map((r) => r.maxBytes),
  ]);
  const pages = reqs.map(() => ({ messages: [] as ChatMessage[], upto: 0 }));
  for (const row of rows) {
    const page = pages[Number(row.idx) - 1]!;
    page.messages.push(toMessage(row));
    page.upto = Number(row.upto);
  }
  return pages.map(({ messages, upto }, i) => ({ messages, more: messages.length === reqs[i]!.limit || (messages.length > 0 && upto >= reqs[i]!.maxBytes) }));
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
