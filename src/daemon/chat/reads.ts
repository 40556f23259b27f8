import { StatementBatcher } from '../postgres/batcher.js';
import type { Database, QueryOptions } from '../postgres/pool.js';
import { getChatsByIDs, getChatVersions } from '../store/chats.js';
import { getChatMessagePages, type MessagePage, type PageRequest } from '../store/messages.js';
import { getQueuedChatMessages } from '../store/queue.js';
import type { Chat, QueuedChatMessage } from '../store/types.js';
import type { StreamStore } from './stream.js';

/**
 * The reads of chat routes and stream handshakes, batched: the chats, history pages and queues asked for in the
 * same moment are one statement each. Thousands of streams opening at once (a deploy, a reconnect storm) then
 * cost a few pool connections instead of queueing thousands of acquisitions in front of every send and turn end.
 */
export class BatchedChatReads implements StreamStore {
  private readonly chats: StatementBatcher<string, Chat | undefined>;
  private readonly pages: StatementBatcher<PageRequest, MessagePage>;
  private readonly queues: StatementBatcher<string, QueuedChatMessage[]>;

  constructor(private readonly db: Database) {
    // Reads contend for nothing: a few may be in flight, so one slow page does not hold back an authorization.
    const opts = { maxItems: 64, maxInFlight: 1 };
    this.chats = new StatementBatcher((ids) => getChatsByIDs(db, ids), opts);
    this.pages = new StatementBatcher((reqs) => getChatMessagePages(db, reqs), { maxItems: 32, maxInFlight: 1 });
    this.queues = new StatementBatcher((ids) => getQueuedChatMessages(db, ids), opts);
  }

  // Properties, not methods: a test seam wraps the store by spreading it.
  readonly getChatByID = (chatId: string, opts?: QueryOptions): Promise<Chat | undefined> => this.chats.submit(chatId, opts?.signal);

  readonly getChatMessagePage = (chatId: string, afterId: number, limit: number, maxBytes: number, opts?: QueryOptions): Promise<MessagePage> =>
    this.pages.submit({ chatId, afterId, limit, maxBytes }, opts?.signal);

  readonly getQueuedChatMessages = (chatId: string, opts?: QueryOptions): Promise<QueuedChatMessage[]> => this.queues.submit(chatId, opts?.signal);

  readonly getChatVersions = (chatIds: string[], opts?: QueryOptions): Promise<Map<string, number>> => getChatVersions(this.db, chatIds, opts);
}
