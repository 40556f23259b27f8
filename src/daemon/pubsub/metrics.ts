import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const latencyBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The pubsub's metrics, under Coder's names so its dashboards carry over. Without a registry they still count (the
 * in-process `stats()` reads them) but are exported nowhere.
 */
export function createPubsubMetrics(registry?: Registry) {
  const registers = registry ? [registry] : [];
  return {
    publishes: new Counter({ name: 'coder_pubsub_publishes_total', help: 'Publish calls, by success.', labelNames: ['success'] as const, registers }),
    subscribes: new Counter({ name: 'coder_pubsub_subscribes_total', help: 'Subscribe calls, by success.', labelNames: ['success'] as const, registers }),
    messages: new Counter({
      name: 'coder_pubsub_messages_total',
      help: 'Messages received, by size (colossal: payload of 7600 bytes or more).',
      labelNames: ['size'] as const,
      registers,
    }),
    publishedBytes: new Counter({ name: 'coder_pubsub_published_bytes_total', help: 'Payload bytes successfully published.', registers }),
    receivedBytes: new Counter({ name: 'coder_pubsub_received_bytes_total', help: 'Payload bytes received.', registers }),
    disconnections: new Counter({ name: 'coder_pubsub_disconnections_total', help: 'Times the LISTEN connection was lost.', registers }),
    connected: new Gauge({ name: 'coder_pubsub_connected', help: '1 while the LISTEN connection is up and listening.', registers }),
    currentSubscribers: new Gauge({ name: 'coder_pubsub_current_subscribers', help: 'Active subscriptions.', registers }),
    currentEvents: new Gauge({ name: 'coder_pubsub_current_events', help: 'Channels with at least one subscription.', registers }),
    sendLatency: new Histogram({
      name: 'coder_pubsub_send_latency_seconds',
      help: 'Time to publish a probe message (background measurement).',
      buckets: latencyBuckets,
      registers,
    }),
    receiveLatency: new Histogram({
      name: 'coder_pubsub_receive_latency_seconds',
      help: 'Time from publishing a probe message to receiving it (background measurement).',
      buckets: latencyBuckets,
      registers,
    }),
    latencyMeasures: new Counter({ name: 'coder_pubsub_latency_measures_total', help: 'Latency probes run.', registers }),
    latencyMeasureErrs: new Counter({ name: 'coder_pubsub_latency_measure_errs_total', help: 'Latency probes that failed or timed out.', registers }),
    droppedSignals: new Counter({
      name: 'coder_pubsub_dropped_signals_total',
      help: 'ErrDroppedMessages signals put into subscription queues (full queue or reconnect).',
      registers,
    }),
    batchSize: new Histogram({
      name: 'coder_pubsub_batch_size',
      help: 'Messages per flushed publish transaction.',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
      registers,
    }),
    batchFlushDuration: new Histogram({
      name: 'coder_pubsub_batch_flush_duration_seconds',
      help: 'Duration of a flush on the sender connection.',
      buckets: latencyBuckets,
      registers,
    }),
    batchQueueDepth: new Gauge({ name: 'coder_pubsub_batch_queue_depth', help: 'Publishes waiting for the next flush.', registers }),
    batchFlushes: new Counter({ name: 'coder_pubsub_batch_flushes_total', help: 'Flushes (transactions) sent on the sender connection.', registers }),
    batchFlushFailures: new Counter({ name: 'coder_pubsub_batch_flush_failures_total', help: 'Flushes that failed on the sender connection.', registers }),
    batchDelegateFallbacks: new Counter({
      name: 'coder_pubsub_batch_delegate_fallbacks_total',
      help: 'Messages replayed through the pool after a failed flush.',
      registers,
    }),
  };
}

export type PubsubMetrics = ReturnType<typeof createPubsubMetrics>;
