import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type NoticeReason = 'status' | 'message' | 'queue_update' | 'error' | 'pending' | 'interrupt' | 'owner';

export interface ChatMetrics {
  turns: Counter;
  turnsFailed: Counter;
  turnDuration: Histogram;
  subscribers: Gauge;
  notices: Counter<'reason'>;
  catchupQueries: Counter;
  partsDropped: Counter;
}

/** `countByStatus` runs on scrape only, so the gauge costs nothing between scrapes. */
export function createChatMetrics(registry: Registry | undefined, countByStatus: () => Promise<Record<string, number>>): ChatMetrics {
  const registers = registry ? [registry] : [];
  new Gauge({
    name: 'coderlite_chats',
    help: 'Chats by status (not archived).',
    labelNames: ['status'],
    registers,
    async collect() {
      const counts = await countByStatus().catch(() => undefined);
      if (!counts) return;
      for (const status of ['waiting', 'pending', 'running', 'error']) this.set({ status }, counts[status] ?? 0);
    },
  });
  return {
    turns: new Counter({ name: 'coderlite_chat_turns_total', help: 'Chat turns finished (any outcome).', registers }),
    turnsFailed: new Counter({ name: 'coderlite_chat_turns_failed_total', help: 'Chat turns that ended in error.', registers }),
    turnDuration: new Histogram({
      name: 'coderlite_chat_turn_duration_seconds',
      help: 'From claiming a chat to the end of its turn.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    subscribers: new Gauge({ name: 'coderlite_chat_stream_subscribers', help: 'Open chat stream subscriptions on this replica.', registers }),
    notices: new Counter({ name: 'coderlite_chat_notices_published_total', help: 'Chat pubsub notices published, by reason.', labelNames: ['reason'], registers }),
    catchupQueries: new Counter({ name: 'coderlite_chat_catchup_queries_total', help: 'Message catch-up reads made by stream subscriptions.', registers }),
    partsDropped: new Counter({
      name: 'coderlite_chat_stream_parts_dropped_total',
      help: 'message_part events not buffered because a turn exceeded the local buffer.',
      registers,
    }),
  };
}
