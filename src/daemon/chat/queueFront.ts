import type { Database } from '../postgres/pool.js';
import type { Publisher } from '../pubsub/pubsub.js';
import { getChatByID } from '../store/chats.js';
import { queueToFront, type QueueToFrontResult } from '../store/queueOrder.js';
import type { Chat, QueuedChatMessage, User } from '../store/types.js';
import type { ChatNotifier } from './notifier.js';
import { ChatArchivedError, ChatGoneError, maxQueuedMessages, QueueFullError } from './service.js';

/**
 * Tells the replica running a chat's turn to stop it as if the model had finished: the partial answer is stored as
 * the assistant's message and the turn ends normally, so the head of the queue runs next. (An interrupt, on
 * `chat:interrupt`, drops the partial answer and leaves the chat waiting.)
 */
export const supersedeChannel = 'chat:supersede';

export class QueuedMessageNotFoundError extends Error {}

export interface QueueFrontOptions {
  db: Database;
  notifier: ChatNotifier;
  publisher: Publisher;
  /** Wakes this replica's worker; false when it has no room (then `chat:pending` tells the others). */
  wake: () => boolean;
}

/**
 * Coder's queue semantics beyond "queue it": promote a queued message, or send with `busy_behavior: "interrupt"` —
 * the message goes first in line, the running turn stops keeping its partial answer, and the message runs next.
 */
export class QueueFront {
  constructor(private readonly opts: QueueFrontOptions) {}

  /** Runs queued message `id` next. Returns the chat after it. */
  async promote(owner: User, chat: Chat, id: number): Promise<Chat> {
    const r = await queueToFront(this.opts.db, chat.id, owner.id, { queuedId: id }, maxQueuedMessages);
    if (r?.outcome === 'not_found') throw new QueuedMessageNotFoundError(`chat ${chat.id} has no queued message ${id}`);
    return this.after(chat.id, r);
  }

  /**
   * A send that does not wait behind the running turn. `undefined` when nothing runs: the caller sends normally
   * (a turn starts at once).
   */
  async sendInterrupting(owner: User, chatId: string, content: string): Promise<{ chat: Chat; queuedMessage: QueuedChatMessage } | undefined> {
    const r = await queueToFront(this.opts.db, chatId, owner.id, { content }, maxQueuedMessages);
    if (r?.outcome === 'idle') return undefined;
    if (r?.outcome === 'full') throw new QueueFullError(`chat ${chatId} already has ${maxQueuedMessages} queued messages`);
    const chat = await this.after(chatId, r);
    const { head } = r!;
    return { chat, queuedMessage: { id: head!.id, chatId, content: head!.content, createdAt: head!.createdAt } };
  }

  private async after(chatId: string, r: QueueToFrontResult | undefined): Promise<Chat> {
    if (!r) throw new ChatGoneError(`chat ${chatId} not found`);
    if (r.outcome === 'archived') throw new ChatArchivedError(`chat ${chatId} is archived`);
    const { notifier } = this.opts;
    if (r.outcome === 'started') {
      const local = this.opts.wake();
      const chat = await this.reread(chatId);
      await Promise.all([notifier.status(chat, { after_message_id: r.messageId, prev_message_id: r.prevMessageId, queue_update: true }), local ? undefined : notifier.pending(chatId)]);
      return chat;
    }
    // Queued first in line: a running turn stops with its partial answer and the worker runs the head next; a
    // pending chat runs its claimed message first, then this one.
    await Promise.all([notifier.stream(chatId, { queue_update: true }), r.status === 'running' ? this.opts.publisher.publish(supersedeChannel, chatId) : undefined]);
    return this.reread(chatId);
  }

  private async reread(chatId: string): Promise<Chat> {
    const chat = await getChatByID(this.opts.db, chatId);
    if (!chat) throw new ChatGoneError(`chat ${chatId} not found`);
    return chat;
  }
}
