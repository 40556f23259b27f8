import type { Database } from '../postgres/pool.js';
import { archiveChat, insertChat, listChatsByOwner, lockChatByID, sendChatMessage, setChatStatus } from '../store/chats.js';
import { getChatMessagesAfter, insertChatMessage } from '../store/messages.js';
import { deleteQueuedChatMessage } from '../store/queue.js';
import { messageJson } from './events.js';
import type { Chat, ChatMessage, QueuedChatMessage, User } from '../store/types.js';
import type { ConfigCache } from './configCache.js';
import type { ChatNotifier } from './notifier.js';

/** Messages a running chat may hold in its queue. */
export const maxQueuedMessages = 20;

export class QueueFullError extends Error {}
export class ChatArchivedError extends Error {}
/** The chat vanished between the caller's read and the change (deleted with its owner). */
export class ChatGoneError extends Error {}

export type SendResult = { queued: false; message: ChatMessage; chat: Chat } | { queued: true; queuedMessage: QueuedChatMessage; chat: Chat };

export interface ChatServiceOptions {
  db: Database;
  notifier: ChatNotifier;
  configCache: Pick<ConfigCache, 'resolve'>;
  /**
   * Wakes this replica's worker at once; false when it has no room, and then other replicas hear `chat:pending`
   * (NOTIFY is not free: a replica with room does not wake the others for each message).
   */
  wake: () => boolean;
}

const titleFrom = (message: string) => {
  const line = message.trim().split('\n', 1)[0]!.trim();
  return line.length > 80 ? `${line.slice(0, 79)}…` : line || 'New chat';
};

/** What users do to chats: create, send, interrupt, archive. Authorization is the caller's (the HTTP layer's). */
export class ChatService {
  constructor(private readonly opts: ChatServiceOptions) {}

  async create(owner: User, input: { message: string; title?: string; modelConfigId?: string }): Promise<Chat> {
    // Resolving through the cache proves the model config exists and its provider is enabled.
    if (input.modelConfigId) await this.opts.configCache.resolve(input.modelConfigId);
    const chat = await this.opts.db.tx(async (tx) => {
      const c = await insertChat(tx, owner.id, input.title?.trim() || titleFrom(input.message), input.modelConfigId ?? null);
      await insertChatMessage(tx, c.id, 'user', input.message);
      return c;
    });
    const local = this.opts.wake();
    await Promise.all([local ? undefined : this.opts.notifier.pending(chat.id), this.opts.notifier.owner('created', chat)]);
    return chat;
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
  async send(owner: User, chatId: string, content: string): Promise<SendResult> {
    const result = await sendChatMessage(this.opts.db, chatId, owner.id, content, maxQueuedMessages);
    if (!result) throw new ChatGoneError(`chat ${chatId} not found`);
    const { notifier } = this.opts;
    if (result.outcome === 'full') throw new QueueFullError(`chat ${chatId} already has ${maxQueuedMessages} queued messages`);
    if (result.outcome === 'archived') throw new ChatArchivedError(`chat ${chatId} is archived`);
    const chat = result.chat;
    if (result.outcome === 'queued') {
      await notifier.stream(chat.id, { queue_update: true });
      return { queued: true, queuedMessage: result.queued, chat };
    }
    const { message, prevMessageId } = result;
    const local = this.opts.wake();
    await Promise.all([
      notifier.status(result.chat, { after_message_id: message.id, messages: [messageJson(message)], prev_message_id: prevMessageId }),
      local ? undefined : notifier.pending(chat.id),
    ]);
    return { queued: false, message, chat: result.chat };
  }

  /** Stops the running turn wherever it runs; the chat waits for the next message. Queued messages stay queued. */
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
    await Promise.all([notifier.owner('archived', after), notifier.interrupt(chat.id), notifier.stream(chat.id, { status: after.status, last_error: after.lastError })]);
    return after;
  }

  /** Removes a queued message before it runs; false when there is none (it may have just been promoted). */
  async deleteQueued(chat: Chat, id: number): Promise<boolean> {
    const removed = await deleteQueuedChatMessage(this.opts.db, chat.id, id);
    if (removed) await this.opts.notifier.stream(chat.id, { queue_update: true });
    return removed;
  }
}
