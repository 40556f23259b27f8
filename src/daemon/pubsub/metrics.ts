import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

interface PerMessageCounterConfig<L extends string> {
  name: string;
  help: string;
  /** At most one label: the series are few (success true/false, size normal/colossal). */
  label?: L;
  registers: Registry[];
}

/**
 * A counter bumped for every message. prom-client hashes and validates the labels on every `inc` (~0.2 µs, an
 * eighth of a NATS message's whole cost here), so the counts go into plain numbers and reach the real counter when it
 * is collected (a scrape, or a test reading the registry).
 */
function perMessageCounter<L extends string>(config: PerMessageCounterConfig<L>) {
  const pending = new Map<string, number>();
  const { label } = config;
  new Counter({
    name: config.name,
    help: config.help,
    labelNames: label ? [label] : [],
    registers: config.registers,
    collect() {
      for (const [value, n] of pending) {
        if (n === 0) continue;
        if (label) this.inc({ [label]: value } as Partial<Record<L, string>>, n);
        else this.inc(n);
        pending.set(value, 0);
      }
    },
  });
  return {
    inc(labels?: Partial<Record<L, string>> | number, by = 1): void {
      const key = typeof labels === 'object' && label ? (labels[label] ?? '') : '';
      const n = typeof labels === 'number' ? labels : by;
      pending.set(key, (pending.get(key) ?? 0) + n);
    },
  };
}

const latencyBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** `coder_pubsub` for PostgreSQL, `coder_nats_pubsub` for NATS, as Coder names them. */
export type PubsubMetricsPrefix = 'coder_pubsub' | 'coder_nats_pubsub';

/**
 * The pubsub's metrics, under Coder's names so its dashboards carry over. Every backend registers the whole set, so
 * one dashboard fits both (the batch series stay at zero on NATS, which has no batching sender). Without a registry
 * they count but are exported nowhere.
 */
export function createPubsubMetrics(registry?: Registry, p: PubsubMetricsPrefix = 'coder_pubsub') {
  const registers = registry ? [registry] : [];
  return {
    publishes: perMessageCounter({ name: `${p}_publishes_total`, help: 'Publish calls, by success.', label: 'success', registers }),
    subscribes: new Counter({ name: `${p}_subscribes_total`, help: 'Subscribe calls, by success.', labelNames: ['success'] as const, registers }),
    messages: perMessageCounter({
      name: `${p}_messages_total`,
      help: 'Messages received, by size (colossal: payload of 7600 bytes or more).',
      label: 'size',
      registers,
    }),
    publishedBytes: perMessageCounter({ name: `${p}_published_bytes_total`, help: 'Payload bytes successfully published.', registers }),
    receivedBytes: perMessageCounter({ name: `${p}_received_bytes_total`, help: 'Payload bytes received.', registers }),
    disconnections: new Counter({ name: `${p}_disconnections_total`, help: 'Times the connection to the server (LISTEN or NATS) was lost.', registers }),
    connected: new Gauge({ name: `${p}_connected`, help: '1 while the connection to the server is up with every channel subscribed.', registers }),
    currentSubscribers: new Gauge({ name: `${p}_current_subscribers`, help: 'Active subscriptions.', registers }),
    currentEvents: new Gauge({ name: `${p}_current_events`, help: 'Channels with at least one subscription.', registers }),
    sendLatency: new Histogram({
      name: `${p}_send_latency_seconds`,
      help: 'Time to publish a probe message (background measurement).',
      buckets: latencyBuckets,
      registers,
    }),
    receiveLatency: new Histogram({
      name: `${p}_receive_latency_seconds`,
      help: 'Time from publishing a probe message to receiving it (background measurement).',
      buckets: latencyBuckets,
      registers,
    }),
    latencyMeasures: new Counter({ name: `${p}_latency_measures_total`, help: 'Latency probes run.', registers }),
    latencyMeasureErrs: new Counter({ name: `${p}_latency_measure_errs_total`, help: 'Latency probes that failed or timed out.', registers }),
    droppedSignals: new Counter({
      name: `${p}_dropped_signals_total`,
      help: 'ErrDroppedMessages signals put into subscription queues (full queue or reconnect).',
      registers,
    }),
    batchSize: new Histogram({
      name: `${p}_batch_size`,
      help: 'Messages per flushed publish transaction.',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
      registers,
    }),
    batchFlushDuration: new Histogram({
      name: `${p}_batch_flush_duration_seconds`,
      help: 'Duration of a flush on the sender connection.',
      buckets: latencyBuckets,
      registers,
    }),
    batchQueueDepth: new Gauge({ name: `${p}_batch_queue_depth`, help: 'Publishes waiting for the next flush.', registers }),
    batchFlushes: new Counter({ name: `${p}_batch_flushes_total`, help: 'Flushes (transactions) sent on the sender connection.', registers }),
    batchFlushFailures: new Counter({ name: `${p}_batch_flush_failures_total`, help: 'Flushes that failed on the sender connection.', registers }),
    batchDelegateFallbacks: new Counter({
      name: `${p}_batch_delegate_fallbacks_total`,
      help: 'Messages replayed through the pool after a failed flush.',
      registers,
    }),
  };
}

export type PubsubMetrics = ReturnType<typeof createPubsubMetrics>;

/** Runs one publish and counts it by outcome, and its bytes on success; `send` resolves with the payload's size. */
export async function countPublish(metrics: PubsubMetrics, send: () => Promise<number>): Promise<void> {
  let bytes: number;
  try {
    bytes = await send();
  } catch (err) {
    metrics.publishes.inc({ success: 'false' });
    throw err;
  }
  metrics.publishes.inc({ success: 'true' });
  metrics.publishedBytes.inc(bytes);
}
