/**
 * One thing `pubsub tail` shows: a message, a dropped-messages signal on a channel, or the connection going away
 * (reconnecting) and coming back (the drop signals follow).
 */
export type TailEvent =
  | { kind: 'message'; time: Date; channel: string; payload: Buffer }
  | { kind: 'dropped'; time: Date; channel: string }
  | { kind: 'connection'; time: Date; connected: boolean; reason?: string };

/** Where the tail view gets its events: the command feeds it from pubsub, tests feed it by hand. */
export interface TailFeed {
  push(event: TailEvent): void;
  /** Returns the unsubscribe function. */
  onEvent(fn: (event: TailEvent) => void): () => void;
}

export function createTailFeed(): TailFeed {
  const listeners = new Set<(event: TailEvent) => void>();
  return {
    push(event) {
      for (const fn of listeners) fn(event);
    },
    onEvent(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

/** Does a message pass the filter? It is tried against the channel and the payload text. */
export function matchesFilter(filter: RegExp | undefined, channel: string, payload: string): boolean {
  return !filter || filter.test(channel) || filter.test(payload);
}

/** The NDJSON line for a message or drop signal (stdout when not on a TTY, or with --json). */
export function toNdjson(event: Exclude<TailEvent, { kind: 'connection' }>): string {
  const time = event.time.toISOString();
  if (event.kind === 'dropped') return `${JSON.stringify({ time, channel: event.channel, dropped: true })}\n`;
  return `${JSON.stringify({ time, channel: event.channel, size: event.payload.length, payload: event.payload.toString('utf8') })}\n`;
}
