import type { Logger } from '../observability/logger.js';
import type { Cancel, Publisher, Subscriber } from '../pubsub/pubsub.js';
import { streamChannel, type PartsNotice, type StreamNotice } from './events.js';
import type { ChatMetrics } from './metrics.js';
import type { LocalParts, PartTap } from './parts.js';

/**
 * Viewers on a replica that does not run the turn ask for its parts here; the replica that runs it answers on the
 * chat's stream channel. Nothing is published for a chat no other replica watches.
 */
export const partsWantChannel = 'chat:parts:want';
/**
 * Each replica says which chats it streams (when a stream opens, and all of them every safety-net tick), so the
 * replica that runs a turn relays its parts from the first one, without waiting to be asked.
 */
export const partsWatchChannel = 'chat:parts:watch';

/** On `chat:parts:watch`: `replica` has viewers of these chats. */
export interface PartsWatch {
  replica: string;
  chats: string[];
}

/** Chat ids per watch notice: 36-byte UUIDs and their quotes stay well below NOTIFY's 8000 bytes. */
const chatsPerWatch = 150;

/** Parts of `generation` after `after`, please. */
export interface PartsWant {
  chat: string;
  generation: number;
  after: number;
}

/** Parts wait this long to share a notice: a model's ~150 tokens/s cost ~25 notices/s, not 150. */
const defaultWindowMs = 40;
/** Text bytes in one notice, below NOTIFY's 8000-byte payload with room for the envelope and JSON escapes. */
const noticeTextBytes = 5000;
/** A part longer than this travels in fragments (`open`), whatever the backend's payload limit. */
const fragmentChars = 800;

export interface PartsRelayOptions {
  /** This replica (its worker id): its own watch notices are not for it. */
  replica: string;
  publisher: Publisher;
  subscriber: Subscriber;
  parts: Pick<LocalParts, 'current' | 'since'>;
  metrics: Pick<ChatMetrics, 'notices'>;
  logger: Logger;
  /** How long a watch or a want keeps parts coming without a renewal; replicas renew on every safety-net tick. */
  leaseMs: number;
  windowMs?: number;
  now?: () => number;
}

interface Watch {
  until: number;
  window?: { generation: number; seq: number; texts: string[]; bytes: number; ts: number; timer: NodeJS.Timeout };
}

export class PartsRelay implements PartTap {
  private readonly watched = new Map<string, Watch>();
  private lastSweep = 0;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: PartsRelayOptions) {
    this.windowMs = opts.windowMs ?? defaultWindowMs;
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<Cancel> {
    const parse = <T>(payload: Buffer, what: string): T | undefined => {
      try {
        return JSON.parse(payload.toString()) as T;
      } catch (err) {
        this.opts.logger.warn({ err }, `chat relay: malformed ${what} ignored`);
        return undefined;
      }
    };
    const cancels = await Promise.all([
      this.opts.subscriber.subscribe(partsWantChannel, (payload) => {
        const want = parse<PartsWant>(payload, 'parts request');
        if (want) this.onWant(want);
      }),
      this.opts.subscriber.subscribe(partsWatchChannel, (payload) => {
        const watch = parse<PartsWatch>(payload, 'watch notice');
        if (watch && watch.replica !== this.opts.replica && Array.isArray(watch.chats)) for (const chat of watch.chats) this.lease(chat);
      }),
    ]);
    return async () => void (await Promise.all(cancels.map((c) => c())));
  }

  /** Tells the other replicas that this one streams `chats`. */
  async announce(chats: readonly string[]): Promise<void> {
    for (let i = 0; i < chats.length; i += chatsPerWatch) {
      const watch: PartsWatch = { replica: this.opts.replica, chats: chats.slice(i, i + chatsPerWatch) };
      try {
        await this.opts.publisher.publish(partsWatchChannel, JSON.stringify(watch));
        this.opts.metrics.notices.inc({ reason: 'parts_watch' });
      } catch (err) {
        this.opts.logger.warn({ err }, 'chat relay: announcing watched chats failed; the next tick announces them again');
      }
    }
  }

  /** A viewer's request, from whichever replica it is on. */
  async want(w: PartsWant): Promise<void> {
    try {
      await this.opts.publisher.publish(partsWantChannel, JSON.stringify(w));
      this.opts.metrics.notices.inc({ reason: 'parts_want' });
    } catch (err) {
      this.opts.logger.warn({ err, chatId: w.chat }, 'chat relay: asking for parts failed; the next tick asks again');
    }
  }

  part(chatId: string, generation: number, seq: number, text: string): void {
    const w = this.watched.get(chatId);
    if (!w) return;
    if (w.until < this.now()) {
      this.flush(chatId);
      this.watched.delete(chatId);
      return;
    }
    if (w.window && w.window.generation !== generation) this.flush(chatId);
    w.window ??= { generation, seq, texts: [], bytes: 0, ts: this.now(), timer: setTimeout(() => this.flush(chatId), this.windowMs) };
    w.window.texts.push(text);
    w.window.bytes += Buffer.byteLength(text);
    if (w.window.bytes >= noticeTextBytes) this.flush(chatId);
  }

  flush(chatId: string): void {
    const w = this.watched.get(chatId);
    const win = w?.window;
    if (!win) return;
    clearTimeout(win.timer);
    w.window = undefined;
    this.send(chatId, win.generation, win.seq, win.texts, win.ts);
  }

  /** Watches still leased (tests). */
  watching(): number {
    return this.watched.size;
  }

  private lease(chatId: string): Watch {
    const now = this.now();
    // Chats no longer watched anywhere are forgotten about once a lease period, so the map stays bounded.
    if (now - this.lastSweep > this.opts.leaseMs) {
      this.lastSweep = now;
      for (const [id, w] of this.watched) if (w.until < now && !w.window) this.watched.delete(id);
    }
    let w = this.watched.get(chatId);
    if (!w) {
      w = { until: 0 };
      this.watched.set(chatId, w);
    }
    w.until = now + this.opts.leaseMs;
    return w;
  }

  private onWant(want: PartsWant): void {
    const cur = this.opts.parts.current(want.chat);
    if (!cur) return;
    this.lease(want.chat);
    // A want for a generation this replica has not begun yet holds the lease; its parts start at seq 1 anyway.
    if (want.generation > cur.generation) return;
    const after = want.generation === cur.generation ? want.after : 0;
    const texts = this.opts.parts.since(want.chat, cur.generation, after);
    // What waits in the window goes first, so the catch-up is the newest thing on the channel.
    this.flush(want.chat);
    if (texts && texts.length > 0) this.send(want.chat, cur.generation, after + 1, texts, this.now(), after + texts.length);
  }

  /** Notices of at most `noticeTextBytes` of text each; a long part goes in fragments, the last of a notice `open`. */
  private send(chatId: string, generation: number, seq: number, texts: readonly string[], ts: number, upto?: number): void {
    let batch: string[] = [];
    let bytes = 0;
    let first = seq;
    const emit = (open: boolean) => {
      if (batch.length === 0) return;
      const parts: PartsNotice = { generation, seq: first, texts: batch, ts, ...(open ? { open: true } : {}), ...(upto !== undefined ? { upto } : {}) };
      void this.publish(chatId, { parts });
      batch = [];
      bytes = 0;
    };
    texts.forEach((text, i) => {
      const partSeq = seq + i;
      if (bytes > 0 && bytes + Buffer.byteLength(text) > noticeTextBytes) {
        emit(false);
        first = partSeq;
      }
      if (text.length <= fragmentChars) {
        batch.push(text);
        bytes += Buffer.byteLength(text);
        return;
      }
      emit(false);
      for (let at = 0; at < text.length; at += fragmentChars) {
        first = partSeq;
        batch.push(text.slice(at, at + fragmentChars));
        emit(at + fragmentChars < text.length);
      }
      first = partSeq + 1;
    });
    emit(false);
  }

  private async publish(chatId: string, notice: StreamNotice): Promise<void> {
    try {
      await this.opts.publisher.publish(streamChannel(chatId), JSON.stringify(notice));
      this.opts.metrics.notices.inc({ reason: 'parts' });
    } catch (err) {
      // Viewers see the hole in `seq` and ask again.
      this.opts.logger.warn({ err, chatId }, 'chat relay: publishing parts failed');
    }
  }
}

/**
 * Puts fragmented parts back together on the viewer's side. Returns whole parts only; a fragment whose continuation
 * never came is dropped, and the hole in `seq` that leaves makes the viewer ask again.
 */
export class PartsAssembler {
  private fragment: { generation: number; seq: number; text: string } | undefined;

  accept(n: PartsNotice): { generation: number; seq: number; texts: string[] } | undefined {
    let texts = n.texts;
    const seq = n.seq;
    const f = this.fragment;
    this.fragment = undefined;
    if (f && f.generation === n.generation && f.seq === n.seq && texts.length > 0) texts = [f.text + texts[0]!, ...texts.slice(1)];
    if (n.open) {
      this.fragment = { generation: n.generation, seq: n.seq + texts.length - 1, text: texts.at(-1) ?? '' };
      texts = texts.slice(0, -1);
    }
    if (texts.length === 0) return undefined;
    return { generation: n.generation, seq, texts };
  }
}
