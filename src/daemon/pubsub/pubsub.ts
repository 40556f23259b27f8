import { isUtf8 } from 'node:buffer';

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

/** PostgreSQL identifiers hold at most NAMEDATALEN-1 bytes; a longer channel would be silently truncated. */
export const maxChannelBytes = 63;
/** PostgreSQL rejects a NOTIFY payload of 8000 bytes or more. */
export const maxPayloadBytes = 7999;
/** Payloads at least this large count as `colossal` in `coder_pubsub_messages_total`. */
export const colossalPayloadBytes = 7600;

/** A publish or subscribe that can never succeed: a bad channel name or payload. Nothing was sent. */
export class PubsubInputError extends Error {
  constructor(
    message: string,
    /** Which limit was broken, for callers that map it to a response. */
    readonly limit: 'channel-length' | 'channel-nul' | 'payload-length' | 'payload-utf8' | 'payload-nul',
  ) {
    super(message);
    this.name = 'PubsubInputError';
  }
}

/** Publish or subscribe on a pubsub that was closed. */
export class ErrPubsubClosed extends Error {
  constructor() {
    super('pubsub: closed');
    this.name = 'ErrPubsubClosed';
  }
}

export function validateChannel(event: string): void {
  const bytes = Buffer.byteLength(event, 'utf8');
  if (bytes < 1 || bytes > maxChannelBytes) {
    throw new PubsubInputError(`pubsub: channel must be 1 to ${maxChannelBytes} bytes (got ${bytes})`, 'channel-length');
  }
  if (event.includes('\0')) throw new PubsubInputError('pubsub: channel must not contain a NUL byte', 'channel-nul');
}

/**
 * Checks a payload against PostgreSQL's NOTIFY rules and returns it as bytes. Every backend keeps the content rules
 * (UTF-8, no NUL), so a payload that works on one works on all; only the size limit is the backend's own (NATS: the
 * server's max_payload).
 */
export function validatePayload(payload: Buffer | string, maxBytes: number = maxPayloadBytes): Buffer {
  const buf = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  if (buf.length > maxBytes) {
    throw new PubsubInputError(`pubsub: payload must be shorter than ${maxBytes + 1} bytes (got ${buf.length})`, 'payload-length');
  }
  // A JS string with a lone surrogate encodes to U+FFFD, so only Buffers can carry invalid UTF-8.
  if (typeof payload !== 'string' && !isUtf8(buf)) throw new PubsubInputError('pubsub: payload must be valid UTF-8', 'payload-utf8');
  if (buf.includes(0)) throw new PubsubInputError('pubsub: payload must not contain a NUL byte', 'payload-nul');
  return buf;
}
