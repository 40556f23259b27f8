import type { Logger } from '../observability/logger.js';
import type { QueryOptions } from '../postgres/pool.js';
import type { Cancel, ErrDroppedMessages, Subscriber } from '../pubsub/pubsub.js';
import type { Chat, ChatMessage, QueuedChatMessage } from '../store/types.js';
import { messageJson, ownerChannel, queuedJson, statusEvent, streamChannel, type MessageJson, type OwnerEvent, type StreamEvent, type StreamNotice } from './events.js';
import type { ChatMetrics } from './metrics.js';

/** The reads a subscription makes; tests wrap the real ones to inject failures. */
export interface StreamStore {
  getChatByID(chatId: string, opts: QueryOptions): Promise<Chat | undefined>;
  /** A page of history bounded by count and by content bytes; `more` is false once the history has ended. */
  getChatMessagePage(chatId: string, afterId: number, limit: number, maxBytes: number, opts: QueryOptions): Promise<{ messages: ChatMessage[]; more: boolean }>;
  getQueuedChatMessages(chatId: string, opts: QueryOptions): Promise<QueuedChatMessage[]>;
}

/** The caller's context: its cancellation and, when it has one, its own deadline (epoch ms). */
export interface StreamContext {
  signal?: AbortSignal;
  deadline?: number;
}

/**
 * Receives events in order. Must not block: the WebSocket layer buffers and cuts off a client that does not read.
 * A sink with `drained` gets history page by page, the next page only once `drained` resolves (backpressure).
 */
export type EventSink = ((events: StreamEvent[]) => void) & { drained?: () => Promise<void> };

/** Test seams around the handshake (DESIGN §4): the lost-update tests commit changes at these points. */
export interface StreamHooks {
  /** After the caller's authorized read, before anything is armed. */
  beforeArm?(chat: Chat): Promise<void>;
  /** After arming, before the re-read. */
  afterArm?(chat: Chat): Promise<void>;
}

export interface ChatStreamsOptions {
  store: StreamStore;
  subscriber: Subscriber;
  logger: Logger;
  metrics: ChatMetrics;
  controlReadTimeoutMs: number;
  maxBufferedParts?: number;
  hooks?: StreamHooks;
}

export interface StreamSubscription {
  /** Idempotent: releases the local entry, the pubsub subscription and any read in flight. */
  cancel(): Promise<void>;
}

export class ChatNotFoundError extends Error {}

/** Messages per history read at most; a longer backlog takes several. */
const messagePage = 1000;
/**
 * Bytes of content in one history page: what one subscriber holds stays near this whatever the history (one message
 * larger than this is a page of its own).
 */
const pageBytes = 512 * 1024;
/**
 * Rows in the first page; later pages ask for as many rows as the last page's average size fits in `pageBytes`, so
 * the database reads few rows past the byte budget.
 */
const firstPage = 64;

interface LocalEntry {
  sinks: Set<(text: string) => void>;
  /** Parts of the turn in progress, for subscribers that join mid-turn. */
  parts: string[];
  running: boolean;
}

/**
 * Chat streams on this replica: the local per-chat part streams fed by the worker, and subscriptions that combine
 * them with pubsub notices from every replica.
 */
export class ChatStreams {
  private readonly entries = new Map<string, LocalEntry>();
  private readonly maxParts: number;

  constructor(private readonly opts: ChatStreamsOptions) {
    this.maxParts = opts.maxBufferedParts ?? 10_000;
  }

  beginTurn(chatId: string): void {
    const e = this.entry(chatId);
    e.running = true;
    e.parts = [];
  }

  /** Fans a part out to this replica's subscribers; never waits on them. */
  publishPart(chatId: string, text: string): void {
    const e = this.entries.get(chatId);
    if (!e) return;
    if (e.parts.length < this.maxParts) e.parts.push(text);
    else this.opts.metrics.partsDropped.inc();
    for (const sink of e.sinks) sink(text);
  }

  endTurn(chatId: string): void {
    const e = this.entries.get(chatId);
    if (!e) return;
    e.running = false;
    e.parts = [];
    this.release(chatId, e);
  }

  /** Local entries alive now (tests check that idle chats leave none). */
  localEntries(): number {
    return this.entries.size;
  }

  /** For callers without an authorized row: looks the chat up, then subscribes. */
  async subscribe(ctx: StreamContext, chatId: string, afterId: number, sink: EventSink): Promise<StreamSubscription> {
    const chat = await this.opts.store.getChatByID(chatId, { signal: ctx.signal });
    if (!chat) throw new ChatNotFoundError(`chat ${chatId} not found`);
    return this.subscribeAuthorized(ctx, chat, afterId, sink);
  }

  /**
   * The handshake of DESIGN §4: `chat` is the row the caller already loaded and authorized. Everything is armed
   * before the first read, so a change committed after the caller's read shows up in the snapshot or live.
   */
  async subscribeAuthorized(ctx: StreamContext, chat: Chat, afterId: number, sink: EventSink): Promise<StreamSubscription> {
    const sub = new Subscription(this, this.opts, ctx, chat, afterId, sink);
    await sub.open();
    return sub;
  }

  /** Forwards the owner's chat-list events (`chat:owner:<user>`). */
  async watchOwner(userId: string, sink: (events: OwnerEvent[]) => void): Promise<Cancel> {
    return this.opts.subscriber.subscribe(ownerChannel(userId), (payload) => {
      try {
        sink([JSON.parse(payload.toString()) as OwnerEvent]);
      } catch (err) {
        this.opts.logger.warn({ err, userId }, 'chat: malformed owner event ignored');
      }
    });
  }

  /** @internal */
  attach(chatId: string, sink: (text: string) => void): LocalEntry {
    const e = this.entry(chatId);
    e.sinks.add(sink);
    return e;
  }

  /** @internal */
  detach(chatId: string, sink: (text: string) => void): void {
    const e = this.entries.get(chatId);
    if (!e) return;
    e.sinks.delete(sink);
    this.release(chatId, e);
  }

  private entry(chatId: string): LocalEntry {
    let e = this.entries.get(chatId);
    if (!e) {
      e = { sinks: new Set(), parts: [], running: false };
      this.entries.set(chatId, e);
    }
    return e;
  }

  private release(chatId: string, e: LocalEntry): void {
    if (!e.running && e.sinks.size === 0 && this.entries.get(chatId) === e) this.entries.delete(chatId);
  }
}

class Subscription implements StreamSubscription {
  private lastMessageId: number;
  private ready = false;
  private closed = false;
  private readonly early: Array<StreamNotice | 'dropped'> = [];
  private chain: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();
  private cancelPubsub?: Cancel;
  private queueRefresh?: { again: boolean };
  private readonly log: Logger;
  private readonly onPart = (text: string) => {
    // Before the snapshot, parts are taken from the entry's buffer instead.
    if (this.ready && !this.closed) this.sink([{ type: 'message_part', text }]);
  };

  constructor(
    private readonly streams: ChatStreams,
    private readonly opts: ChatStreamsOptions,
    private readonly ctx: StreamContext,
    private readonly chat: Chat,
    afterId: number,
    private readonly sink: EventSink,
  ) {
    this.lastMessageId = afterId;
    this.log = opts.logger.child({ chatId: chat.id });
  }

  async open(): Promise<void> {
    const { store, metrics, hooks } = this.opts;
    const chatId = this.chat.id;
    this.ctx.signal?.addEventListener('abort', () => void this.cancel(), { once: true });
    metrics.subscribers.inc();
    try {
      await hooks?.beforeArm?.(this.chat);
      // Step 2: arm both sources before any read.
      const entry = this.streams.attach(chatId, this.onPart);
      this.cancelPubsub = await this.opts.subscriber.subscribeWithErr(streamChannel(chatId), (payload, err) => this.onNotice(payload, err));
      await hooks?.afterArm?.(this.chat);

      // Step 3: the re-read; the authorized row stands in when it fails.
      let current = this.chat;
      try {
        current = (await store.getChatByID(chatId, { signal: this.controlSignal() })) ?? this.chat;
      } catch (err) {
        if (!this.closed) this.log.warn({ err }, 'chat stream: re-reading the chat failed; starting from the authorized row');
      }
      if (this.closed) return;
      // The snapshot begins with the status, then history page by page under the sink's backpressure; notices
      // meanwhile wait in `early`, and pages go on until one comes back short, so nothing committed is skipped.
      await this.streamMessages('snapshot', [statusEvent(current)]);
      let queued: QueuedChatMessage[] | undefined;
      try {
        queued = await store.getQueuedChatMessages(chatId, { signal: this.controlSignal() });
      } catch (err) {
        if (!this.closed) this.log.warn({ err }, 'chat stream: reading the queue failed; it follows with the next queue update');
      }
      if (this.closed) return;

      const rest: StreamEvent[] = [];
      if (queued && queued.length > 0) rest.push({ type: 'queue_update', queued: queued.map(queuedJson) });
      for (const text of entry.parts) rest.push({ type: 'message_part', text });
      // The end of the snapshot and the switch to live parts happen in one tick, so no part is lost or doubled.
      this.ready = true;
      if (rest.length > 0) this.sink(rest);
      for (const n of this.early.splice(0)) this.enqueue(n);
    } catch (err) {
      await this.cancel();
      throw err;
    }
  }

  async cancel(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort(new Error('stream subscription closed'));
    this.opts.metrics.subscribers.dec();
    this.streams.detach(this.chat.id, this.onPart);
    await this.cancelPubsub?.();
  }

  /**
   * Step 4: control-path reads are bounded by the caller's own deadline when it has one, else by the control
   * timeout (5 s by default); the subscription's end cancels them too.
   */
  private controlSignal(): AbortSignal {
    const remaining = this.ctx.deadline === undefined ? this.opts.controlReadTimeoutMs : Math.max(0, this.ctx.deadline - Date.now());
    const signals = [this.abort.signal, AbortSignal.timeout(remaining)];
    if (this.ctx.signal) signals.push(this.ctx.signal);
    return AbortSignal.any(signals);
  }

  private onNotice(payload: Buffer | undefined, err: ErrDroppedMessages | undefined): void {
    if (this.closed) return;
    let notice: StreamNotice | 'dropped';
    if (err || !payload) notice = 'dropped';
    else {
      try {
        notice = JSON.parse(payload.toString()) as StreamNotice;
      } catch (parseErr) {
        this.log.warn({ err: parseErr }, 'chat stream: malformed notice ignored');
        return;
      }
    }
    if (this.ready) this.enqueue(notice);
    else this.early.push(notice);
  }

  /** Notices are handled one at a time, in order: a message catch-up completes before the status that follows it. */
  private enqueue(notice: StreamNotice | 'dropped'): void {
    this.chain = this.chain.then(() => this.handle(notice));
  }

  private async handle(notice: StreamNotice | 'dropped'): Promise<void> {
    if (this.closed) return;
    if (notice === 'dropped') {
      // Notices may be lost: re-read everything the notices would have told.
      let current: Chat | undefined;
      try {
        current = await this.opts.store.getChatByID(this.chat.id, { signal: this.controlSignal() });
      } catch (err) {
        if (!this.closed) this.log.warn({ err }, 'chat stream: re-reading the chat after dropped notices failed');
      }
      await this.catchUp();
      if (current && !this.closed) this.sink([statusEvent(current)]);
      this.refreshQueue();
      return;
    }
    if (notice.after_message_id !== undefined && notice.after_message_id > this.lastMessageId) {
      // The notice carries its messages; when we hold the one before them there is no gap and nothing to read.
      if (notice.messages && notice.prev_message_id !== undefined && notice.prev_message_id <= this.lastMessageId) this.deliver(notice.messages);
      else await this.catchUp();
    }
    if (this.closed) return;
    if (notice.status) this.sink([{ type: 'status', status: notice.status, last_error: notice.last_error ?? null }]);
    if (notice.error) this.sink([{ type: 'error', message: notice.error }]);
    if (notice.queue_update) this.refreshQueue();
  }

  private deliver(messages: MessageJson[]): void {
    const fresh = messages.filter((m) => m.id > this.lastMessageId);
    if (fresh.length === 0) return;
    this.lastMessageId = fresh.at(-1)!.id;
    this.sink(fresh.map((message) => ({ type: 'message' as const, message })));
  }

  private async catchUp(): Promise<void> {
    this.opts.metrics.catchupQueries.inc();
    await this.streamMessages('catch-up');
  }

  /**
   * Sends the messages after the cursor page by page, advancing it; with a backpressured sink each page waits until
   * the client has taken the one before, so one subscriber holds about one page. A failed read is logged; the next
   * notice retries from the cursor.
   */
  private async streamMessages(what: string, lead: StreamEvent[] = []): Promise<void> {
    let limit = firstPage;
    // `lead` (the snapshot's status) shares the first frame with the first page.
    const send = (events: StreamEvent[]) => {
      if (events.length === 0 && lead.length === 0) return;
      this.sink([...lead.splice(0), ...events]);
    };
    try {
      for (;;) {
        const page = await this.opts.store.getChatMessagePage(this.chat.id, this.lastMessageId, limit, pageBytes, { signal: this.controlSignal() });
        if (this.closed) return;
        const { messages } = page;
        if (messages.length > 0) this.lastMessageId = messages[messages.length - 1]!.id;
        send(messages.map((m) => ({ type: 'message' as const, message: messageJson(m) })));
        if (!page.more) return;
        const bytes = messages.reduce((n, m) => n + Buffer.byteLength(m.content), 0);
        limit = Math.max(1, Math.min(messagePage, Math.floor((pageBytes * messages.length) / Math.max(1, bytes))));
        await this.sink.drained?.();
        if (this.closed) return;
      }
    } catch (err) {
      if (this.closed) return;
      this.log.warn({ err }, `chat stream: ${what} read of messages failed; the next notice retries`);
      send([]);
    }
  }

  /** Off the delivery path: a slow queue read never holds back messages or statuses. One read in flight. */
  private refreshQueue(): void {
    if (this.queueRefresh) {
      this.queueRefresh.again = true;
      return;
    }
    const state = { again: false };
    this.queueRefresh = state;
    void (async () => {
      do {
        state.again = false;
        try {
          const queued = await this.opts.store.getQueuedChatMessages(this.chat.id, { signal: this.controlSignal() });
          if (!this.closed) this.sink([{ type: 'queue_update', queued: queued.map(queuedJson) }]);
        } catch (err) {
          if (!this.closed) this.log.warn({ err }, 'chat stream: queue refresh failed');
        }
      } while (state.again && !this.closed);
      this.queueRefresh = undefined;
    })();
  }
}
