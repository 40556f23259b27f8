import { namedQuery, type QueryOptions, type Queryable } from '../postgres/pool.js';
import type { StoredResponse } from './idempotency.js';
import type { Chat, ChatErrorKind, ChatMessage, ChatRetry, ChatStatus, QueuedChatMessage } from './types.js';

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
  generation: string;
  version: string;
  last_error_kind: ChatErrorKind | null;
  retry_attempt: number | null;
  retry_kind: ChatErrorKind | null;
  retry_delay_ms: number | null;
  retrying_at: Date | null;
}

const chatColumns =
  'id, owner_id, title, status, worker_id, started_at, heartbeat_at, last_model_config_id, last_error, archived, created_at, updated_at, ' +
  'generation, version, last_error_kind, retry_attempt, retry_kind, retry_delay_ms, retrying_at';

const toRetry = (r: ChatRow): ChatRetry | null =>
  r.retry_attempt === null || r.retrying_at === null ? null : { attempt: r.retry_attempt, kind: r.retry_kind ?? 'generic', delayMs: r.retry_delay_ms ?? 0, retryingAt: r.retrying_at };

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
  generation: Number(r.generation),
  version: Number(r.version),
  lastErrorKind: r.last_error_kind,
  retry: toRetry(r),
});

const getChatByIDQ = namedQuery('getChatByID', `SELECT ${chatColumns} FROM chats WHERE id = $1`);

export async function getChatByID(db: Queryable, id: string, opts?: QueryOptions): Promise<Chat | undefined> {
  const { rows } = await db.query<ChatRow>(getChatByIDQ, [id], opts);
  return rows[0] && toChat(rows[0]);
}

const getChatsByIDsQ = namedQuery('getChatsByIDs', `SELECT ${chatColumns} FROM chats WHERE id = ANY($1::uuid[])`);

/** Many chats in one read, in the order of `ids` (undefined for a missing one). */
export async function getChatsByIDs(db: Queryable, ids: readonly string[]): Promise<Array<Chat | undefined>> {
  const { rows } = await db.query<ChatRow>(getChatsByIDsQ, [ids]);
  const byId = new Map(rows.map((r) => [r.id, toChat(r)]));
  return ids.map((id) => byId.get(id));
}

const lockChatByIDQ = namedQuery('lockChatByID', `SELECT ${chatColumns} FROM chats WHERE id = $1 FOR UPDATE`);

/** Inside a transaction: the chat row, locked until commit. */
export async function lockChatByID(tx: Queryable, id: string): Promise<Chat | undefined> {
  const { rows } = await tx.query<ChatRow>(lockChatByIDQ, [id]);
  return rows[0] && toChat(rows[0]);
}

/** What a claimed turn sends the model: the chat's latest messages, oldest first. */
export type ClaimedHistory = Array<Pick<ChatMessage, 'role' | 'content'>>;

export type SendChatMessageResult =
  | { outcome: 'started'; chat: Chat; message: ChatMessage; prevMessageId: number; history?: ClaimedHistory }
  | { outcome: 'queued'; chat: Chat; queued: QueuedChatMessage }
  /** The chat was idle with messages queued: the message went behind them and the oldest one started. */
  | { outcome: 'promoted'; chat: Chat; queued: QueuedChatMessage; message: ChatMessage; prevMessageId: number; history?: ClaimedHistory }
  | { outcome: 'full'; chat: Chat }
  | { outcome: 'archived'; chat: Chat };

/** Timestamps arrive as text inside JSON. */
const jsonDates = ['started_at', 'heartbeat_at', 'created_at', 'updated_at', 'retrying_at', 'item_created_at', 'promoted_created_at', 'assistant_created_at'];

/** A row the statement returned as JSON (`to_jsonb`), with its timestamps as Dates again. */
function fromJson<R>(json: Record<string, unknown>): R {
  const row: Record<string, unknown> = { ...json };
  for (const k of jsonDates) if (typeof row[k] === 'string') row[k] = new Date(row[k]);
  return row as R;
}

type SendRow = ChatRow & {
  outcome: SendChatMessageResult['outcome'];
  item_id: string | null;
  item_created_at: Date | null;
  prev_message_id: string | null;
  promoted_id: string | null;
  promoted_content: string | null;
  promoted_created_at: Date | null;
  history?: ClaimedHistory;
};

function toSendResult(json: Record<string, unknown>, content: string): SendChatMessageResult {
  const r = fromJson<SendRow>(json);
  const chat = toChat(r);
  const chatId = chat.id;
  if (r.outcome === 'full') return { outcome: 'full', chat };
  if (r.outcome === 'archived') return { outcome: 'archived', chat };
  const id = Number(r.item_id);
  const queued = { id, chatId, content, createdAt: r.item_created_at! };
  if (r.outcome === 'queued') return { outcome: 'queued', chat, queued };
  const claimed = r.history ? { history: r.history } : {};
  if (r.outcome === 'promoted') {
    const message: ChatMessage = { id: Number(r.promoted_id), chatId, role: 'user', content: r.promoted_content!, createdAt: r.promoted_created_at! };
    return { outcome: 'promoted', chat, queued, message, prevMessageId: Number(r.prev_message_id), ...claimed };
  }
  return { outcome: 'started', chat, message: { id, chatId, role: 'user', content, createdAt: r.item_created_at! }, prevMessageId: Number(r.prev_message_id), ...claimed };
}

export interface SendInput {
  chatId: string;
  ownerId: string;
  content: string;
  /** An Idempotency-Key and the request's fingerprint. */
  idempotency?: { key: string; fingerprint: string };
  /** A turn the send starts is claimed for the batch's worker (`running` at once, with its history). */
  claim?: boolean;
}

/** The worker that claims the turns its replica's sends and creates start, and the history a claim reads. */
export interface TurnClaimer {
  workerId: string;
  historyLimit: number;
}

/** A key seen before: the earlier request's fingerprint and what it did (`result`) or answered (`response`). */
export interface Replay<R> {
  fingerprint: string;
  result?: R;
  response: StoredResponse;
}

interface KeyRow {
  fingerprint: string;
  status: number;
  response: unknown;
  result: Record<string, unknown> | null;
}

const toReplay = <R>(k: KeyRow, parse: (json: Record<string, unknown>) => R): Replay<R> => ({
  fingerprint: k.fingerprint,
  response: { status: k.status, body: k.response },
  ...(k.result ? { result: parse(k.result) } : {}),
});

type BatchRow = { idx: number; result: Record<string, unknown> | null; replay: KeyRow | null };

/** Per send: `sent` undefined when the owner has no such chat. */
export type SendOutput = { replay: Replay<SendChatMessageResult> } | { replay?: undefined; sent: SendChatMessageResult | undefined };

const sendChatMessagesQ = namedQuery(
  'sendChatMessages',
  'SELECT idx, result, replay FROM chat_send_batch($1::uuid[], $2::uuid[], $3::text[], $4::int, $5::text[], $6::text[], $7::boolean[], $8, $9::int)',
);

/**
 * Sends in one round trip, each under its chat's row lock and authorizing as it goes: a running or pending chat
 * queues the message (`full` at `queueLimit`), any other starts a turn with it, or with the oldest queued message
 * when there is one (`promoted`). A keyed send claims its key and stores its result in the same statement; an
 * outcome that changed nothing gives the key back. A turn a send with `claim` starts is `claimer`'s. Outputs are in
 * the order of `inputs`.
 */
export async function sendChatMessages(db: Queryable, inputs: readonly SendInput[], queueLimit: number, claimer?: TurnClaimer): Promise<SendOutput[]> {
  const { rows } = await db.query<BatchRow>(sendChatMessagesQ, [
    inputs.map((i) => i.chatId),
    inputs.map((i) => i.ownerId),
    inputs.map((i) => i.content),
    queueLimit,
    inputs.map((i) => i.idempotency?.key ?? null),
    inputs.map((i) => i.idempotency?.fingerprint ?? null),
    inputs.map((i) => claimer !== undefined && i.claim === true),
    claimer?.workerId ?? null,
    claimer?.historyLimit ?? 0,
  ]);
  const out: SendOutput[] = inputs.map(() => ({ sent: undefined }));
  for (const { idx, result, replay } of rows) {
    const { content } = inputs[idx - 1]!;
    const parse = (json: Record<string, unknown>) => toSendResult(json, content);
    out[idx - 1] = replay ? { replay: toReplay(replay, parse) } : { sent: result ? parse(result) : undefined };
  }
  return out;
}

export interface CreateInput {
  ownerId: string;
  title: string;
  modelConfigId: string | null;
  message: string;
  idempotency?: { key: string; fingerprint: string };
  /** The new chat starts `running` on the batch's worker. */
  claim?: boolean;
}

export type CreateOutput = { replay: Replay<Chat> } | { replay?: undefined; chat: Chat };

const createChatsQ = namedQuery(
  'createChats',
  'SELECT idx, result, replay FROM chat_create_batch($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::boolean[], $8)',
);

/**
 * New chats with their first message in one round trip, each `pending`, or `running` on `claimer`'s worker when its
 * input says `claim`; a keyed one claims its key and stores the chat.
 */
export async function createChats(db: Queryable, inputs: readonly CreateInput[], claimer?: Pick<TurnClaimer, 'workerId'>): Promise<CreateOutput[]> {
  const { rows } = await db.query<BatchRow>(createChatsQ, [
    inputs.map((i) => i.ownerId),
    inputs.map((i) => i.title),
    inputs.map((i) => i.modelConfigId),
    inputs.map((i) => i.message),
    inputs.map((i) => i.idempotency?.key ?? null),
    inputs.map((i) => i.idempotency?.fingerprint ?? null),
    inputs.map((i) => claimer !== undefined && i.claim === true),
    claimer?.workerId ?? null,
  ]);
  const parse = (json: Record<string, unknown>) => toChat(fromJson<ChatRow>(json));
  const out = new Array<CreateOutput>(inputs.length);
  for (const { idx, result, replay } of rows) out[idx - 1] = replay ? { replay: toReplay(replay, parse) } : { chat: parse(result!) };
  return out;
}

export interface EndInput {
  chatId: string;
  text: string | undefined;
  error: { message: string; kind: ChatErrorKind } | undefined;
}

/** A turn's end: the chat after it, the messages it added in order, and the newest message before them. */
export interface EndOutput {
  chat: Chat;
  added: ChatMessage[];
  prevMessageId: number;
}

const endChatTurnsQ = namedQuery('endChatTurns', 'SELECT idx, result FROM chat_end_turns($1::uuid[], $2, $3::text[], $4::text[], $5::text[])');

type EndRow = ChatRow & {
  prev_message_id: string;
  assistant_id: string | null;
  assistant_created_at: Date | null;
  promoted_id: string | null;
  promoted_content: string | null;
  promoted_created_at: Date | null;
};

/**
 * Ends turns of `workerId` in one round trip: each stores its reply, promotes the next queued message unless it
 * failed, and sets `pending`, `error` or `waiting`. Undefined for a chat interrupted, archived or taken over
 * meanwhile. Outputs are in the order of `inputs`.
 */
export async function endChatTurns(db: Queryable, workerId: string, inputs: readonly EndInput[]): Promise<Array<EndOutput | undefined>> {
  const { rows } = await db.query<{ idx: number; result: Record<string, unknown> }>(endChatTurnsQ, [
    inputs.map((i) => i.chatId),
    workerId,
    inputs.map((i) => i.text ?? null),
    inputs.map((i) => i.error?.message ?? null),
    inputs.map((i) => i.error?.kind ?? null),
  ]);
  const out: Array<EndOutput | undefined> = inputs.map(() => undefined);
  for (const { idx, result } of rows) {
    const r = fromJson<EndRow>(result);
    const { chatId, text } = inputs[idx - 1]!;
    const added: ChatMessage[] = [];
    if (r.assistant_id !== null) added.push({ id: Number(r.assistant_id), chatId, role: 'assistant', content: text!, createdAt: r.assistant_created_at! });
    if (r.promoted_id !== null) added.push({ id: Number(r.promoted_id), chatId, role: 'user', content: r.promoted_content!, createdAt: r.promoted_created_at! });
    out[idx - 1] = { chat: toChat(r), added, prevMessageId: Number(r.prev_message_id) };
  }
  return out;
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
  `UPDATE chats SET status = $2, last_error = $3, last_error_kind = NULL, worker_id = NULL, updated_at = now() WHERE id = $1 RETURNING ${chatColumns}`,
);

/** Inside the transaction that holds the row lock: the next status, clearing the worker. */
export async function setChatStatus(tx: Queryable, id: string, status: ChatStatus, lastError: string | null): Promise<Chat> {
  const { rows } = await tx.query<ChatRow>(setChatStatusQ, [id, status, lastError]);
  return toChat(rows[0]!);
}

// SKIP LOCKED: replicas claiming at once each take different chats instead of queueing on the same rows. The
// conversation comes along (its latest messages, oldest first), so a turn makes no read of its own before the model.
const acquirePendingChatsQ = namedQuery(
  'acquirePendingChats',
  `WITH claimed AS (
     UPDATE chats SET status = 'running', worker_id = $1, started_at = now(), heartbeat_at = now(), last_error = NULL, last_error_kind = NULL,
                      generation = generation + 1, updated_at = now()
      WHERE id IN (SELECT id FROM chats WHERE status = 'pending' AND NOT archived ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)
      RETURNING ${chatColumns})
   SELECT claimed.*,
          (SELECT coalesce(json_agg(json_build_object('role', h.role, 'content', h.content) ORDER BY h.id), '[]')
             FROM (SELECT m.id, m.role, m.content FROM chat_messages m WHERE m.chat_id = claimed.id ORDER BY m.id DESC LIMIT $3) h) AS history
     FROM claimed`,
);

/** Claims up to `limit` pending chats for this worker, oldest first, each with its latest `historyLimit` messages. */
export async function acquirePendingChats(
  db: Queryable,
  workerId: string,
  limit: number,
  historyLimit: number,
): Promise<Array<{ chat: Chat; history: ClaimedHistory }>> {
  const { rows } = await db.query<ChatRow & { history: ClaimedHistory }>(acquirePendingChatsQ, [workerId, limit, historyLimit]);
  return rows.map((r) => ({ chat: toChat(r), history: r.history }));
}

const setChatRetryQ = namedQuery(
  'setChatRetry',
  `UPDATE chats SET generation = generation + 1, retry_attempt = $3, retry_kind = $4, retry_delay_ms = $5::int,
          retrying_at = now() + make_interval(secs => $5::int / 1000.0)
    WHERE id = $1 AND worker_id = $2 AND status = 'running' RETURNING ${chatColumns}`,
);

/**
 * A retryable failure of `workerId`'s turn: the retry state goes on the row and the next attempt is a new generation.
 * Undefined when the chat is no longer this worker's.
 */
export async function setChatRetry(db: Queryable, chatId: string, workerId: string, attempt: number, kind: ChatErrorKind, delayMs: number): Promise<Chat | undefined> {
  const { rows } = await db.query<ChatRow>(setChatRetryQ, [chatId, workerId, attempt, kind, delayMs]);
  return rows[0] && toChat(rows[0]);
}

const getChatVersionsQ = namedQuery('getChatVersions', 'SELECT id, version FROM chats WHERE id = ANY($1::uuid[])');

/** The versions of the given chats, for the streams' safety net: one read for every chat a replica streams. */
export async function getChatVersions(db: Queryable, ids: string[], opts?: QueryOptions): Promise<Map<string, number>> {
  const { rows } = await db.query<{ id: string; version: string }>(getChatVersionsQ, [ids], opts);
  return new Map(rows.map((r) => [r.id, Number(r.version)]));
}

const heartbeatChatsQ = namedQuery(
  'heartbeatChats',
  // Locks in id order, as the batched sends and turn ends do: writers of several chat rows cannot deadlock.
  `UPDATE chats SET heartbeat_at = now()
    WHERE id IN (SELECT id FROM chats WHERE id = ANY($2::uuid[]) AND worker_id = $1 AND status = 'running' ORDER BY id FOR UPDATE)
    RETURNING id`,
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
