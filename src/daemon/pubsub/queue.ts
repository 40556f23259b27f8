import type { Logger } from '../observability/logger.js';
import { droppedMessages, type Listener, type ListenerWithErr } from './pubsub.js';

/** Items a subscription may hold before it starts dropping (Coder's BufferSize). */
export const queueCapacity = 2048;

/** `undefined` payload marks a dropped-messages signal. */
type Item = Buffer | undefined;

export interface MessageQueueOptions {
  logger: Logger;
  /** For logs: the channel the queue belongs to. */
  event: string;
  capacity?: number;
  /** Called each time a drop signal is put into the queue (full queue, reconnect). */
  onDropSignal?: () => void;
}

/**
 * One subscription's mailbox: a bounded ring that a single async loop drains into the listener, one item at a time
 * and in order. `enqueue` never blocks or throws, so the notification dispatcher can never be held up by a listener.
 * When full, the new message is dropped and the newest queued slot becomes ErrDroppedMessages: the subscriber may lose
 * two messages but always learns that it lost something, before anything newer.
 */
export class MessageQueue {
  private readonly ring: Item[];
  private head = 0;
  private size = 0;
  private draining = false;
  private closed = false;
  private readonly capacity: number;

  constructor(
    private readonly listener: ListenerWithErr,
    private readonly opts: MessageQueueOptions,
  ) {
    this.capacity = opts.capacity ?? queueCapacity;
    this.ring = new Array<Item>(this.capacity);
  }

  get length(): number {
    return this.size;
  }

  enqueue(payload: Buffer): void {
    if (this.closed) return;
    if (this.size === this.capacity) {
      this.ring[(this.head + this.size - 1) % this.capacity] = undefined;
      this.opts.onDropSignal?.();
      return;
    }
    this.push(payload);
  }

  /** Tells the subscriber that messages may have been lost (after a reconnect). */
  signalDropped(): void {
    if (this.closed) return;
    this.opts.onDropSignal?.();
    if (this.size === this.capacity) this.ring[(this.head + this.size - 1) % this.capacity] = undefined;
    else this.push(undefined);
  }

  /** Stops delivery: queued items are discarded; a listener call in progress is not waited for. */
  close(): void {
    this.closed = true;
    this.ring.fill(undefined);
    this.size = 0;
  }

  private push(item: Item): void {
    this.ring[(this.head + this.size) % this.capacity] = item;
    this.size++;
    if (!this.draining) {
      this.draining = true;
      queueMicrotask(() => void this.drain());
    }
  }

  private async drain(): Promise<void> {
    while (this.size > 0 && !this.closed) {
      const item = this.ring[this.head];
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.size--;
      try {
        const result = item === undefined ? this.listener(undefined, droppedMessages) : this.listener(item, undefined);
        // Synchronous listeners run back to back; only a returned promise costs a turn of the event loop.
        if (result) await result;
      } catch (err) {
        this.opts.logger.error({ err, event: this.opts.event }, 'pubsub listener failed; delivery continues');
      }
    }
    this.draining = false;
  }
}

/** Adapts a plain listener: it sees payloads only, never the dropped-messages signal. */
export function withoutErr(listener: Listener): ListenerWithErr {
  return (payload) => (payload === undefined ? undefined : listener(payload));
}
