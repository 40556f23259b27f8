/**
 * The pubsub contracts. Components take the smallest one they use: a part that only publishes takes a `Publisher`,
 * so its fake is three lines.
 */

/** Messages were or may have been lost (a full queue, a reconnect): re-read your state. */
export class ErrDroppedMessages extends Error {
  constructor() {
    super('pubsub: messages were or may have been dropped; re-read state');
    this.name = 'ErrDroppedMessages';
  }
}

/** The single instance listeners receive, so `err === droppedMessages` and `instanceof` both work. */
export const droppedMessages = new ErrDroppedMessages();

/** A plain listener gets every delivered payload and never an error. */
export type Listener = (payload: Buffer) => void | Promise<void>;

/** Gets `(payload, undefined)` or `(undefined, ErrDroppedMessages)`. */
export type ListenerWithErr = (payload: Buffer | undefined, err: ErrDroppedMessages | undefined) => void | Promise<void>;

/** Stops delivery to one subscription. Idempotent; safe to call from inside its own listener. */
export type Cancel = () => Promise<void>;

export interface Publisher {
  publish(event: string, payload: Buffer | string): Promise<void>;
}

export interface Subscriber {
  subscribe(event: string, listener: Listener): Promise<Cancel>;
  subscribeWithErr(event: string, listener: ListenerWithErr): Promise<Cancel>;
}

export interface Pubsub extends Publisher, Subscriber {
  /** Idempotent; every call resolves (or rejects) with the same result. */
  close(): Promise<void>;
}
