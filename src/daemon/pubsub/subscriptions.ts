import type { Logger } from '../observability/logger.js';
import type { PubsubMetrics } from './metrics.js';
import { colossalPayloadBytes, ErrPubsubClosed, validateChannel, type Cancel, type ListenerWithErr } from './pubsub.js';
import { MessageQueue } from './queue.js';

/**
 * A channel's local subscriptions and the backend's hold on it: PostgreSQL marks it listened, NATS keeps its one
 * subscription on the subject. `undefined` while the backend does not (or no longer) hold it.
 */
export interface Channel<H> {
  readonly event: string;
  readonly queues: Set<MessageQueue>;
  handle: H | undefined;
  /** Backend calls for one channel run one after another, in call order (Coder #15312). */
  tail: Promise<void>;
}

export interface SubscriptionRegistryOptions<H> {
  logger: Logger;
  metrics: PubsubMetrics;
  /** True once the pubsub refuses new subscriptions. */
  isClosed(): boolean;
  /**
   * Brings the backend in line with the channel: hold it while it has queues, release it once empty. Runs on the
   * channel's chain. A throw fails the subscribe that asked for it.
   */
  sync(ch: Channel<H>): Promise<void>;
}

/**
 * What every real backend shares (Coder exports its queue for the NATS backend the same way): the channels and their
 * queues, the subscribe/cancel ordering per channel, delivery, drop signals and their metrics. Messages are dispatched
 * synchronously into queues that never block, so no backend call can wait on a listener (Coder #11950).
 */
export class SubscriptionRegistry<H> {
  private readonly channels = new Map<string, Channel<H>>();
  /** While the backend re-establishes its subscriptions, messages wait here so the drop signal goes first. */
  private held: Array<[string, Buffer]> | undefined;
  private readonly onDropSignal: () => void;

  constructor(private readonly opts: SubscriptionRegistryOptions<H>) {
    this.onDropSignal = () => opts.metrics.droppedSignals.inc();
  }

  /** Every channel, for a backend that re-establishes them after a reconnect. */
  all(): Channel<H>[] {
    return [...this.channels.values()];
  }

  async subscribe(event: string, listener: ListenerWithErr): Promise<Cancel> {
    const { metrics, logger } = this.opts;
    try {
      if (this.opts.isClosed()) throw new ErrPubsubClosed();
      validateChannel(event);
    } catch (err) {
      metrics.subscribes.inc({ success: 'false' });
      throw err;
    }
    let ch = this.channels.get(event);
    if (!ch) {
      ch = { event, queues: new Set(), handle: undefined, tail: Promise.resolve() };
      this.channels.set(event, ch);
      metrics.currentEvents.set(this.channels.size);
    }
    const queue = new MessageQueue(listener, { logger, event, onDropSignal: this.onDropSignal });
    ch.queues.add(queue);
    metrics.currentSubscribers.inc();
    const channel = ch;
    let cancelled: Promise<void> | undefined;
    const cancel: Cancel = () =>
      (cancelled ??= (async () => {
        queue.close();
        if (!channel.queues.delete(queue)) return;
        metrics.currentSubscribers.dec();
        // Safe from inside the subscription's own listener: nothing here waits on delivery.
        if (channel.queues.size === 0) await this.resync(channel).catch((err: unknown) => logger.warn({ err, event }, 'pubsub unsubscribe failed'));
      })());
    try {
      await this.resync(channel);
    } catch (err) {
      metrics.subscribes.inc({ success: 'false' });
      await cancel();
      throw new Error(`pubsub: cannot subscribe to ${event}`, { cause: err });
    }
    metrics.subscribes.inc({ success: 'true' });
    return cancel;
  }

  /** Runs the backend's sync on the channel's chain; forgets the channel if it is still empty and released. */
  resync(ch: Channel<H>): Promise<void> {
    const run = ch.tail.then(async () => {
      await this.opts.sync(ch);
      // Only if nobody subscribed while the unsubscribe was in flight.
      if (ch.queues.size === 0 && ch.handle === undefined && this.channels.get(ch.event) === ch) {
        this.channels.delete(ch.event);
        this.opts.metrics.currentEvents.set(this.channels.size);
      }
    });
    ch.tail = run.catch(() => undefined);
    return run;
  }

  /** A message from the backend: counted, then queued for every local subscription of its channel. */
  receive(event: string, payload: Buffer): void {
    const { metrics } = this.opts;
    metrics.receivedBytes.inc(payload.length);
    metrics.messages.inc({ size: payload.length >= colossalPayloadBytes ? 'colossal' : 'normal' });
    if (this.held) this.held.push([event, payload]);
    else this.dispatch(event, payload);
  }

  /** Holds incoming messages until `release`, while the backend re-subscribes after a reconnect. */
  hold(): void {
    this.held ??= [];
  }

  /**
   * Subscribers learn of possible loss once the backend is subscribed again (a re-read now sees everything) and
   * before any message that arrived since.
   */
  release(): void {
    for (const ch of this.channels.values()) for (const q of ch.queues) q.signalDropped();
    const waiting = this.held ?? [];
    this.held = undefined;
    for (const [event, payload] of waiting) this.dispatch(event, payload);
  }

  close(): void {
    for (const ch of this.channels.values()) {
      for (const q of ch.queues) q.close();
      ch.queues.clear();
    }
    this.channels.clear();
    this.held = undefined;
    this.opts.metrics.currentSubscribers.set(0);
    this.opts.metrics.currentEvents.set(0);
  }

  private dispatch(event: string, payload: Buffer): void {
    const ch = this.channels.get(event);
    if (!ch) return;
    for (const q of ch.queues) q.enqueue(payload);
  }
}
