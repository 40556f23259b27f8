import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type NoticeReason = 'status' | 'message' | 'queue_update' | 'error' | 'retry' | 'pending' | 'interrupt' | 'owner' | 'parts' | 'parts_want' | 'parts_watch';

export interface ChatMetrics {
  turns: Counter;
  turnsFailed: Counter;
  turnDuration: Histogram;
  subscribers: Gauge;
  notices: Counter<'reason'>;
  catchupQueries: Counter;
  /** Streams the safety net found behind the database and resynced. */
  streamResyncs: Counter;
  /** Holes in relayed parts a viewer asked to have filled. */
  partGaps: Counter;
  /** From a part's production on the worker's replica to its hand-over to a viewer on another. */
  partRelayLatency: Histogram;
  retries: Counter<'kind'>;
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
    streamResyncs: new Counter({
      name: 'coderlite_chat_stream_resyncs_total',
      help: 'Chat streams the periodic version check found behind (a notice lost) and resynced.',
      registers,
    }),
    partGaps: new Counter({ name: 'coderlite_chat_part_gaps_total', help: 'Holes in relayed message parts that a viewer asked to have sent again.', registers }),
    partRelayLatency: new Histogram({
      name: 'coderlite_chat_part_relay_seconds',
      help: "From a part's production on the replica running the turn to its delivery to a viewer on another replica.",
      buckets: [0.005, 0.01, 0.025, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    retries: new Counter({ name: 'coderlite_chat_turn_retries_total', help: 'Model calls retried after a retryable failure, by kind.', labelNames: ['kind'], registers }),
  };
}
