import { StatementBatcher } from '../postgres/batcher.js';
import type { Database } from '../postgres/pool.js';
import {
  archiveChat,
  createChats,
  listChatsByOwner,
  lockChatByID,
  sendChatMessages,
  setChatStatus,
  type CreateInput,
  type CreateOutput,
  type Replay,
  type SendChatMessageResult,
  type SendInput,
  type SendOutput,
  type TurnClaimer,
} from '../store/chats.js';
import { defaultModelChosen, getDefaultChatModelConfig, lockChatConfigSeed, setDefaultChatModelConfig, upsertChatModelConfig, upsertChatProvider } from '../store/providers.js';
import type { StoredResponse } from '../store/idempotency.js';
import { getChatMessagesAfter } from '../store/messages.js';
import { deleteQueuedChatMessage } from '../store/queue.js';
import { messageJson } from './events.js';
import type { Chat, ChatMessage, QueuedChatMessage, User } from '../store/types.js';
import type { ResolvedChatConfig } from './config.js';
import type { ConfigCache } from './configCache.js';
import { statusNotice, type ChatNotifier } from './notifier.js';
import type { PromptMessage } from './providers/provider.js';

/** Messages a running chat may hold in its queue. */
export const maxQueuedMessages = 20;

export class QueueFullError extends Error {}
/** The Idempotency-Key was used before for a different request. */
export class IdempotencyMismatchError extends Error {}
export class ChatArchivedError extends Error {}
/** The chat vanished between the caller's read and the change (deleted with its owner). */
export class ChatGoneError extends Error {}

/** A turn a send started: its user message (the sent one, or the oldest queued one it went behind). */
interface StartedTurn {
  message: ChatMessage;
  prevMessageId: number;
}

export type SendResult =
  | ({ queued: false; chat: Chat } & StartedTurn)
  | { queued: true; queuedMessage: QueuedChatMessage; chat: Chat; started?: StartedTurn };

/** Errors for the outcomes that change nothing (they roll an idempotent request back, so a retry tries again). */
function sendResult(chatId: string, r: SendChatMessageResult | undefined): SendResult {
  if (!r) throw new ChatGoneError(`chat ${chatId} not found`);
  if (r.outcome === 'full') throw new QueueFullError(`chat ${chatId} already has ${maxQueuedMessages} queued messages`);
  if (r.outcome === 'archived') throw new ChatArchivedError(`chat ${chatId} is archived`);
  if (r.outcome === 'queued') return { queued: true, queuedMessage: r.queued, chat: r.chat };
  if (r.outcome === 'promoted') return { queued: true, queuedMessage: r.queued, chat: r.chat, started: { message: r.message, prevMessageId: r.prevMessageId } };
  return { queued: false, message: r.message, chat: r.chat, prevMessageId: r.prevMessageId };
}

const keyOf = (idem: IdempotentRequest<unknown> | undefined) => (idem ? { idempotency: { key: idem.key, fingerprint: idem.fingerprint } } : {});

/** A retry's answer: rendered from what the first request did, or the answer stored before results were kept. */
function replay<R, T>(seen: Replay<R>, idem: IdempotentRequest<T> | undefined, toResult: (r: R) => T): { replay: StoredResponse } {
  if (!idem || seen.fingerprint !== idem.fingerprint) throw new IdempotencyMismatchError('this Idempotency-Key was used for a different request');
  return { replay: seen.result !== undefined ? idem.render(toResult(seen.result)) : seen.response };
}

export interface ChatServiceOptions {
  db: Database;
  notifier: ChatNotifier;
  configCache: Pick<ConfigCache, 'resolve'>;
  /**
   * Wakes this replica's worker at once; false when it has no room, and then other replicas hear `chat:pending`
   * (NOTIFY is not free: a replica with room does not wake the others for each message).
   */
  wake: () => boolean;
  /** This replica's worker, for sends and creates that claim their turn in their own statement. */
  turns?: TurnClaims;
}

/**
 * A worker that runs the turns sends and creates claim for it: the chat goes `running` in the statement that starts the
 * turn, with no `pending` step, no claim statement and no second status change to tell every viewer.
 */
export interface TurnClaims {
  readonly claimer: TurnClaimer;
  /** A slot for one turn; false when the worker has no room (the chat then goes `pending`, for any replica). */
  reserve(): boolean;
  /** Runs a turn claimed in a reserved slot. */
  adopt(chat: Chat, history: PromptMessage[]): void;
  /** Gives back a reserved slot that no turn took. */
  release(): void;
}

/**
 * A request sent with an Idempotency-Key: what it did is stored with the work, in the same statement, and a retry
 * gets that answer back (`replay`) instead of doing the work twice.
 */
export interface IdempotentRequest<T> {
  key: string;
  /** Identifies the request (route and body): the same key with another request is refused. */
  fingerprint: string;
  /** The answer to store for a first request. */
  render(result: T): StoredResponse;
}

export type Outcome<T> = { result: T; replay?: undefined } | { replay: StoredResponse };

const titleFrom = (message: string) => {
  const line = message.trim().split('\n', 1)[0]!.trim();
  return line.length > 80 ? `${line.slice(0, 79)}…` : line || 'New chat';
};

/** What users do to chats: create, send, interrupt, archive. Authorization is the caller's (the HTTP layer's). */
export class ChatService {
  /** Creates and sends of the same moment, keyed or not, go to PostgreSQL as one statement each. */
  private readonly sends: StatementBatcher<SendInput, SendOutput>;
  private readonly creates: StatementBatcher<CreateInput, CreateOutput>;

  constructor(private readonly opts: ChatServiceOptions) {
    this.sends = new StatementBatcher((inputs) => sendChatMessages(opts.db, inputs, maxQueuedMessages, opts.turns?.claimer), {
      maxItems: 64,
      maxBytes: 4 << 20,
      sizeOf: (i) => i.content.length,
    });
    this.creates = new StatementBatcher((inputs) => createChats(opts.db, inputs, opts.turns?.claimer), { maxItems: 64, maxBytes: 4 << 20, sizeOf: (i) => i.message.length });
  }

  /**
   * Makes the start-up flags' provider and model the default, unless an operator has picked one (`models
   * set-default`), which then stays across restarts; idempotent, and safe when replicas start together.
   */
  async seedDefaultModel(c: Pick<ResolvedChatConfig, 'provider' | 'llmBaseUrl' | 'llmModel'>): Promise<void> {
    await this.opts.db.tx(async (tx) => {
      await lockChatConfigSeed(tx);
      const provider = await upsertChatProvider(tx, c.provider, c.provider, c.provider === 'openai-compat' ? (c.llmBaseUrl ?? null) : null);
      const model = await upsertChatModelConfig(tx, provider.id, c.llmModel);
      if (!(await defaultModelChosen(tx)) || !(await getDefaultChatModelConfig(tx))) await setDefaultChatModelConfig(tx, model.id);
    });
  }

  async create(owner: User, input: { message: string; title?: string; modelConfigId?: string }, idem?: IdempotentRequest<Chat>): Promise<Outcome<Chat>> {
    // Resolving through the cache proves the model config exists and its provider is enabled.
    if (input.modelConfigId) await this.opts.configCache.resolve(input.modelConfigId);
    const out = await this.claiming((claim) =>
      this.creates.submit({
        ownerId: owner.id,
        title: input.title?.trim() || titleFrom(input.message),
        modelConfigId: input.modelConfigId ?? null,
        message: input.message,
        ...keyOf(idem),
        claim,
      }),
      (o) => (o.replay || o.chat.status !== 'running' ? undefined : { chat: o.chat, history: [{ role: 'user', content: input.message }] }),
    );
    if (out.replay) return replay(out.replay, idem, (chat) => chat);
    const { chat } = out;
    // No viewer can have subscribed to the chat before it existed: only the owner's list hears of it.
    const local = chat.status === 'running' || this.opts.wake();
    await Promise.all([local ? undefined : this.opts.notifier.pending(chat.id), this.opts.notifier.owner('created', chat)]);
    return { result: chat };
  }

  list(owner: User, afterId: string | null, limit: number): Promise<Chat[]> {
    return listChatsByOwner(this.opts.db, owner.id, afterId, limit);
  }

  messages(chat: Chat, afterId: number, limit: number): Promise<ChatMessage[]> {
    return getChatMessagesAfter(this.opts.db, chat.id, afterId, limit);
  }

  /**
   * Queues the message while a turn is running or about to (409 past the limit), else starts a turn with it. The
   * statement authorizes too: another user's chat is `ChatGoneError`, as if it did not exist.
   */
  async send(owner: User, chatId: string, content: string, idem?: IdempotentRequest<SendResult>): Promise<Outcome<SendResult>> {
    const out = await this.claiming(
      (claim) => this.sends.submit({ chatId, ownerId: owner.id, content, ...keyOf(idem), claim }),
      (o) => (!o.replay && o.sent && 'history' in o.sent && o.sent.history ? { chat: o.sent.chat, history: o.sent.history } : undefined),
    );
    if (out.replay) return replay(out.replay, idem, (r) => sendResult(chatId, r));
    const outcome = sendResult(chatId, out.sent);
    const { notifier } = this.opts;
    const { chat } = outcome;
    const started = outcome.queued ? outcome.started : outcome;
    // Committed: the answer goes out without waiting for the notices' flush (they are queued in order already).
    if (!started) {
      void notifier.stream(chat.id, { queue_update: true, version: chat.version });
      return { result: outcome };
    }
    const { message, prevMessageId } = started;
    // A turn this send claimed is running here already; else the worker that claims it tells the viewers.
    const local = chat.status === 'running' || this.opts.wake();
    void Promise.all([
      notifier.status(chat, { after_message_id: message.id, messages: [messageJson(message)], prev_message_id: prevMessageId, ...(outcome.queued ? { queue_update: true } : {}) }),
      local ? undefined : notifier.pending(chat.id),
    ]);
    return { result: outcome };
  }

  /**
   * Runs `statement` with a turn slot of this replica's worker when it has one, so the turn the statement starts is
   * claimed for it; the slot goes to the turn `claimed` finds in the outcome, or back to the worker.
   */
  private async claiming<T>(statement: (claim: boolean) => Promise<T>, claimed: (out: T) => { chat: Chat; history: PromptMessage[] } | undefined): Promise<T> {
    const turns = this.opts.turns;
    const claim = turns?.reserve() ?? false;
    let out: T;
    try {
      out = await statement(claim);
    } catch (err) {
      if (claim) turns!.release();
      throw err;
    }
    if (!claim) return out;
    const turn = claimed(out);
    if (turn) turns!.adopt(turn.chat, turn.history);
    else turns!.release();
    return out;
  }

  /**
   * Stops the running turn wherever it runs; the chat waits for the next message. Queued messages stay queued and
   * run, in order, ahead of the next one sent.
   */
  async interrupt(chat: Chat): Promise<Chat> {
    const { changed, chat: after } = await this.opts.db.tx(async (tx) => {
      const locked = await lockChatByID(tx, chat.id);
      if (!locked) throw new ChatGoneError(`chat ${chat.id} is gone`);
      if (locked.status !== 'running' && locked.status !== 'pending') return { changed: false, chat: locked };
      return { changed: true, chat: await setChatStatus(tx, chat.id, 'waiting', null) };
    });
    if (changed) await Promise.all([this.opts.notifier.interrupt(chat.id), this.opts.notifier.status(after)]);
    return after;
  }

  async archive(chat: Chat): Promise<Chat> {
    const after = await archiveChat(this.opts.db, chat.id);
    if (!after) throw new ChatGoneError(`chat ${chat.id} is gone`);
    // An archived chat runs no turn: stop one wherever it runs (a no-op when idle).
    const { notifier } = this.opts;
    await Promise.all([notifier.owner('archived', after), notifier.interrupt(chat.id), notifier.stream(chat.id, statusNotice(after))]);
    return after;
  }

  /** Removes a queued message before it runs; false when there is none (it may have just been promoted). */
  async deleteQueued(chat: Chat, id: number): Promise<boolean> {
    const version = await deleteQueuedChatMessage(this.opts.db, chat.id, id);
    if (version === undefined) return false;
    await this.opts.notifier.stream(chat.id, { queue_update: true, version });
    return true;
  }
}
