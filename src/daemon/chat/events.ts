import type { Chat, ChatErrorKind, ChatMessage, ChatRetry, ChatStatus, QueuedChatMessage } from '../store/types.js';

/** The JSON shapes of the chat API and its stream (DESIGN §4). */
export interface ChatJson {
  id: string;
  owner_id: string;
  title: string;
  status: ChatStatus;
  last_error: string | null;
  last_model_config_id: string | null;
  archived: boolean;
  created_at: string;
  updated_at: string;
}

export interface MessageJson {
  id: number;
  chat_id: string;
  role: 'user' | 'assistant';
  content: string;
  created_at: string;
}

export interface QueuedJson {
  id: number;
  content: string;
  created_at: string;
}

export interface ErrorJson {
  /** Safe to show: never an upstream's own text. */
  message: string;
  kind: ChatErrorKind;
  retryable: boolean;
}

export interface RetryJson {
  attempt: number;
  delay_ms: number;
  kind: ChatErrorKind;
  retrying_at: string;
}

/**
 * What a chat stream sends. Every event carries `cursor`, the position to resume from on any replica (set as the
 * event leaves the subscription). `message_part` is part `seq` of the turn's run `generation`; a late joiner's first
 * part holds all the text up to its `seq`. `preview_reset`: drop the partial reply, its run will not go on.
 */
export type StreamEvent = (
  | { type: 'status'; status: ChatStatus; last_error: string | null }
  | { type: 'message'; message: MessageJson }
  | { type: 'message_part'; text: string; generation: number; seq: number }
  | { type: 'preview_reset' }
  | { type: 'queue_update'; queued: QueuedJson[] }
  | ({ type: 'retry' } & RetryJson)
  | ({ type: 'error' } & ErrorJson)
) & { cursor?: string };

export const chatJson = (c: Chat): ChatJson => ({
  id: c.id,
  owner_id: c.ownerId,
  title: c.title,
  status: c.status,
  last_error: c.lastError,
  last_model_config_id: c.lastModelConfigId,
  archived: c.archived,
  created_at: c.createdAt.toISOString(),
  updated_at: c.updatedAt.toISOString(),
});

export const messageJson = (m: ChatMessage): MessageJson => ({
  id: m.id,
  chat_id: m.chatId,
  role: m.role,
  content: m.content,
  created_at: m.createdAt.toISOString(),
});

export const queuedJson = (q: QueuedChatMessage): QueuedJson => ({ id: q.id, content: q.content, created_at: q.createdAt.toISOString() });

export const statusEvent = (c: Pick<Chat, 'status' | 'lastError'>): StreamEvent => ({ type: 'status', status: c.status, last_error: c.lastError });

export const retryJson = (r: ChatRetry): RetryJson => ({ attempt: r.attempt, delay_ms: r.delayMs, kind: r.kind, retrying_at: r.retryingAt.toISOString() });

/** Parts `seq`, `seq + 1`, … of a run, relayed to the replicas that watch it (`open`: the last text continues). */
export interface PartsNotice {
  generation: number;
  seq: number;
  texts: string[];
  open?: true;
  /** A catch-up answering a request, in several notices: it ends with part `upto`. */
  upto?: number;
  /** When the first of them was produced (epoch ms): the viewer's replica measures relay latency from it. */
  ts: number;
}

/**
 * What travels on `chat:stream:<id>`: small enough for NOTIFY whatever the chat holds. Replicas turn it into events,
 * reading messages and the queue themselves.
 */
export interface StreamNotice {
  status?: ChatStatus;
  last_error?: string | null;
  /** The newest persisted message: subscribers behind it catch up. */
  after_message_id?: number;
  /** The messages this change added, when they fit in a notice… */
  messages?: MessageJson[];
  /** …and the newest message before them: a subscriber that has it needs no read. */
  prev_message_id?: number;
  worker_id?: string | null;
  /** The run the status belongs to. */
  generation?: number;
  /** The chat's version after the change: streams skip what they have seen and the safety net compares it. */
  version?: number;
  /** The queue changed; re-read it. */
  queue_update?: true;
  error?: ErrorJson;
  retry?: RetryJson;
  parts?: PartsNotice;
}

/** On `chat:owner:<user>`: what the owner's chat list needs to stay live. */
export interface OwnerEvent {
  kind: 'created' | 'status' | 'archived';
  chat: ChatJson;
}

export const streamChannel = (chatId: string) => `chat:stream:${chatId}`;
export const ownerChannel = (userId: string) => `chat:owner:${userId}`;
/** A chat became pending: workers on every replica try to claim it. Payload: the chat id. */
export const pendingChannel = 'chat:pending';
/** Stop the turn of the chat in the payload, wherever it runs. */
export const interruptChannel = 'chat:interrupt';
