import type { Logger } from '../observability/logger.js';
import type { Publisher } from '../pubsub/pubsub.js';
import type { Chat } from '../store/types.js';
import { chatJson, interruptChannel, ownerChannel, pendingChannel, streamChannel, type OwnerEvent, type StreamNotice } from './events.js';
import type { ChatMetrics, NoticeReason } from './metrics.js';

/** What a status notice says of the chat row. */
export const statusNotice = (chat: Chat): StreamNotice => ({
  status: chat.status,
  last_error: chat.lastError,
  worker_id: chat.workerId,
  generation: chat.generation,
  version: chat.version,
});

/** Below PostgreSQL's 8000-byte NOTIFY limit, with room for the rest of the notice. */
const maxNoticeBytes = 7000;

/**
 * Publishes chat notices after their transaction committed. A failed publish is logged, never thrown: the state is
 * in the database, and subscribers re-read it on their next notice or after a dropped-messages signal.
 */
export class ChatNotifier {
  constructor(
    private readonly publisher: Publisher,
    private readonly metrics: ChatMetrics,
    private readonly logger: Logger,
  ) {}

  async stream(chatId: string, notice: StreamNotice): Promise<void> {
    const reason: NoticeReason = notice.retry ? 'retry' : notice.status ? 'status' : notice.after_message_id !== undefined ? 'message' : notice.queue_update ? 'queue_update' : 'error';
    let payload = JSON.stringify(notice);
    // Messages too large for NOTIFY stay behind; subscribers read them instead.
    if (Buffer.byteLength(payload) > maxNoticeBytes) payload = JSON.stringify({ ...notice, messages: undefined, prev_message_id: undefined });
    await this.send(streamChannel(chatId), payload, reason);
  }

  async owner(kind: OwnerEvent['kind'], chat: Chat): Promise<void> {
    await this.send(ownerChannel(chat.ownerId), JSON.stringify({ kind, chat: chatJson(chat) } satisfies OwnerEvent), 'owner');
  }

  /** A status change goes to the chat's stream and the owner's list alike. */
  async status(chat: Chat, extra: StreamNotice = {}): Promise<void> {
    await Promise.all([this.stream(chat.id, { ...extra, ...statusNotice(chat) }), this.owner('status', chat)]);
  }

  async pending(chatId: string): Promise<void> {
    await this.send(pendingChannel, chatId, 'pending');
  }

  async interrupt(chatId: string): Promise<void> {
    await this.send(interruptChannel, chatId, 'interrupt');
  }

  private async send(channel: string, payload: string, reason: NoticeReason): Promise<void> {
    try {
      await this.publisher.publish(channel, payload);
      this.metrics.notices.inc({ reason });
    } catch (err) {
      this.logger.warn({ err, channel }, 'chat: publishing a notice failed; subscribers catch up on the next one');
    }
  }
}
