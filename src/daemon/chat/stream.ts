import type { Logger } from '../observability/logger.js';
import type { QueryOptions } from '../postgres/pool.js';
import type { Cancel, ErrDroppedMessages, Subscriber } from '../pubsub/pubsub.js';
import type { Chat, ChatMessage, QueuedChatMessage } from '../store/types.js';
import { formatCursor, type StreamCursor } from './cursor.js';
import { messageJson, ownerChannel, queuedJson, retryJson, statusEvent, streamChannel, type MessageJson, type OwnerEvent, type PartsNotice, type StreamEvent, type StreamNotice } from './events.js';
import type { ChatMetrics } from './metrics.js';
import { statusNotice } from './notifier.js';
import type { LocalParts, PartListener } from './parts.js';
import { PartsAssembler, type PartsRelay } from './relay.js';

/** The reads a subscription makes; tests wrap the real ones to inject failures. */
export interface StreamStore {
  getChatByID(chatId: string, opts: QueryOptions): Promise<Chat | undefined>;
  /** A page of history bounded by count and by content bytes; `more` is false once the history has ended. */
  getChatMessagePage(chatId: string, afterId: number, limit: number, maxBytes: number, opts: QueryOptions): Promise<{ messages: ChatMessage[]; more: boolean }>;
  getQueuedChatMessages(chatId: string, opts: QueryOptions): Promise<QueuedChatMessage[]>;
  /** The safety net's one read for every chat this replica streams. */
  getChatVersions(chatIds: string[], opts: QueryOptions): Promise<Map<string, number>>;
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
  /** Sees every notice first; returning false drops it, as a lost NOTIFY would (the safety-net tests). */
  notice?(chatId: string, notice: StreamNotice): boolean;
}

export interface ChatStreamsOptions {
  store: StreamStore;
  subscriber: Subscriber;
  parts: Pick<LocalParts, 'attach' | 'detach' | 'current' | 'since'>;
  /** Asks the replica running a turn for its parts, and tells the others which chats are streamed here. */
  relay: Pick<PartsRelay, 'want' | 'announce'>;
  /** This replica's worker: a chat it runs streams from `parts`, any other through the relay. */
  workerId: string;
  logger: Logger;
  metrics: ChatMetrics;
  controlReadTimeoutMs: number;
  /** The safety net's period: streams behind the database are resynced, relay leases renewed. Default 10 s. */
  checkIntervalMs?: number;
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
const defaultCheckIntervalMs = 10_000;
/** A version ahead of a stream may be a notice still on its way: the safety net looks again this much later. */
const notYetMs = 1000;
/** A request for missing parts not answered by then is sent again. */
const wantRetryMs = 1000;
/** After an announcement, streams opened within this long wait to be announced together in the next one. */
const announceWindowMs = 40;

/**
 * Subscriptions to chat streams on this replica: the handshake of DESIGN §4, parts from this replica's turns or
 * relayed from the replica running the turn, and the periodic version check that heals a lost notice.
 */
export class ChatStreams {
  private readonly subs = new Set<Subscription>();
  private readonly timer: NodeJS.Timeout;
  private checking = false;
  private readonly opened = new Set<string>();
  private announceTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ChatStreamsOptions) {
    this.timer = setInterval(() => void this.check(), opts.checkIntervalMs ?? defaultCheckIntervalMs).unref();
  }

  /** For callers without an authorized row: looks the chat up, then subscribes. */
  async subscribe(ctx: StreamContext, chatId: string, cursor: StreamCursor | number, sink: EventSink): Promise<StreamSubscription> {
    const chat = await this.opts.store.getChatByID(chatId, { signal: ctx.signal });
    if (!chat) throw new ChatNotFoundError(`chat ${chatId} not found`);
    return this.subscribeAuthorized(ctx, chat, cursor, sink);
  }

  /**
   * The handshake of DESIGN §4: `chat` is the row the caller already loaded and authorized. Everything is armed
   * before the first read, so a change committed after the caller's read shows up in the snapshot or live.
   */
  async subscribeAuthorized(ctx: StreamContext, chat: Chat, cursor: StreamCursor | number, sink: EventSink): Promise<StreamSubscription> {
    const at = typeof cursor === 'number' ? { afterId: cursor, generation: 0, seq: 0 } : cursor;
    const sub = new Subscription(this.opts, ctx, chat, at, sink, () => this.subs.delete(sub));
    this.subs.add(sub);
    this.announceSoon(chat.id);
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

  /** Open subscriptions (tests check that closed streams leave none). */
  size(): number {
    return this.subs.size;
  }

  close(): void {
    clearInterval(this.timer);
    clearTimeout(this.announceTimer);
  }

  /**
   * The replica that runs this chat's next turn relays it from its first part. A lone stream is announced at once;
   * a burst of them (5000 clients connecting) in one notice per window.
   */
  private announceSoon(chatId: string): void {
    if (this.announceTimer) {
      this.opened.add(chatId);
      return;
    }
    void this.opts.relay.announce([chatId]);
    const flush = () => {
      this.announceTimer = undefined;
      if (this.opened.size === 0) return;
      const chats = [...this.opened];
      this.opened.clear();
      void this.opts.relay.announce(chats);
      this.announceTimer = setTimeout(flush, announceWindowMs).unref();
    };
    this.announceTimer = setTimeout(flush, announceWindowMs).unref();
  }

  /**
   * The safety net: one read of the versions of every chat streamed here. A stream whose chat moved on without a
   * notice reaching it is resynced; the chats streamed here are announced again, renewing the relay's leases.
   */
  async check(): Promise<void> {
    if (this.checking || this.subs.size === 0) return;
    this.checking = true;
    try {
      const subs = [...this.subs];
      const ids = [...new Set(subs.map((s) => s.chatId))];
      void this.opts.relay.announce(ids);
      const versions = await this.opts.store.getChatVersions(ids, { signal: AbortSignal.timeout(this.opts.controlReadTimeoutMs) });
      for (const sub of subs) {
        const v = versions.get(sub.chatId);
        if (v !== undefined) sub.checkVersion(v);
      }
    } catch (err) {
      this.opts.logger.warn({ err }, 'chat streams: the periodic version check failed; it runs again next period');
    } finally {
      this.checking = false;
    }
  }
}

type Item = { notice: StreamNotice } | 'dropped';

class Subscription implements StreamSubscription {
  readonly chatId: string;
  private lastMessageId: number;
  /** The newest chat version this stream has shown: older notices' statuses are stale. */
  private version: number;
  /** The run whose parts the client holds, and how many. */
  private preview: { generation: number; seq: number } | undefined;
  /** The turn as last known: its run, and the worker running it (null when not running). */
  private turn: { generation: number; workerId: string | null };
  /** Parts of runs up to this one are over (interrupted, failed, re-queued): late ones are dropped. */
  private stoppedGeneration = 0;
  /** A first batch after (re)connecting or a hole goes out as one part. */
  private catchingUp = true;
  /** The cursor of the last event sent. */
  private shown: StreamCursor;
  private wantUntil = 0;
  private versionAhead: NodeJS.Timeout | undefined;
  private ready = false;
  private closed = false;
  private readonly early: Item[] = [];
  private chain: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();
  private cancelPubsub?: Cancel;
  private queueRefresh?: { again: boolean };
  private readonly assembler = new PartsAssembler();
  private catchUpParts: { generation: number; seq: number; texts: string[] } | undefined;
  private readonly log: Logger;
  private readonly onLocalParts: PartListener = (generation, seq, texts) => {
    // Before the snapshot, parts are taken from the turn's log instead.
    if (this.ready && !this.closed) this.parts(generation, seq, texts, 'local');
  };

  constructor(
    private readonly opts: ChatStreamsOptions,
    private readonly ctx: StreamContext,
    private readonly chat: Chat,
    private readonly cursor: StreamCursor,
    private readonly sink: EventSink,
    private readonly onClose: () => void,
  ) {
    this.chatId = chat.id;
    this.lastMessageId = cursor.afterId;
    this.shown = { afterId: cursor.afterId, generation: cursor.seq > 0 ? cursor.generation : 0, seq: cursor.seq };
    this.version = chat.version;
    this.turn = { generation: chat.generation, workerId: chat.status === 'running' ? chat.workerId : null };
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
      this.opts.parts.attach(chatId, this.onLocalParts);
      this.cancelPubsub = await this.opts.subscriber.subscribeWithErr(streamChannel(chatId), (payload, err) => this.onNotice(payload, err));
      await hooks?.afterArm?.(this.chat);

      // Step 3: the re-read; the authorized row stands in when it fails.
      let current = this.chat;
      try {
        current = (await this.controlRead((o) => store.getChatByID(chatId, o))) ?? this.chat;
      } catch (err) {
        if (!this.closed) this.log.warn({ err }, 'chat stream: re-reading the chat failed; starting from the authorized row');
      }
      if (this.closed) return;
      this.version = current.version;
      this.turn = { generation: current.generation, workerId: current.status === 'running' ? current.workerId : null };
      // The snapshot begins with the status, then history page by page under the sink's backpressure; notices
      // meanwhile wait in `early`, and pages go on until one comes back short, so nothing committed is skipped.
      const newestReply = await this.streamMessages('snapshot', [statusEvent(current), ...turnState(current)]);
      // A reply made after the re-read's run began ended that run: its parts still on their way are not shown.
      if (current.status === 'running' && newestReply && current.startedAt && newestReply >= current.startedAt) {
        current = { ...current, status: 'waiting' };
        this.turn = { generation: current.generation, workerId: null };
      }
      let queued: QueuedChatMessage[] | undefined;
      try {
        queued = await this.controlRead((o) => store.getQueuedChatMessages(chatId, o));
      } catch (err) {
        if (!this.closed) this.log.warn({ err }, 'chat stream: reading the queue failed; it follows with the next queue update');
      }
      if (this.closed) return;

      const rest: StreamEvent[] = [];
      if (queued && queued.length > 0) rest.push({ type: 'queue_update', queued: queued.map(queuedJson) });
      this.resumePreview(current, this.cursor.seq > 0 && !newestReply, rest);
      // The end of the snapshot and the switch to live parts happen in one tick, so no part is lost or doubled.
      this.ready = true;
      if (rest.length > 0) this.emit(rest);
      this.askForParts();
      for (const item of this.early.splice(0)) this.enqueue(item);
    } catch (err) {
      await this.cancel();
      throw err;
    }
  }

  async cancel(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort(new Error('stream subscription closed'));
    clearTimeout(this.versionAhead);
    this.opts.metrics.subscribers.dec();
    this.opts.parts.detach(this.chat.id, this.onLocalParts);
    this.onClose();
    await this.cancelPubsub?.();
  }

  /** The safety net found the chat at `version`: behind it still a moment later means a notice was lost. */
  checkVersion(version: number): void {
    if (this.closed || !this.ready || version <= this.version || this.versionAhead) return;
    this.versionAhead = setTimeout(() => {
      this.versionAhead = undefined;
      if (this.closed || version <= this.version) return;
      this.opts.metrics.streamResyncs.inc();
      this.log.info({ seen: this.version, version }, 'chat stream: the chat moved on without a notice reaching this stream; resyncing');
      this.enqueue('dropped');
    }, notYetMs).unref();
  }

  /**
   * Where the client's partial reply stands after the snapshot: the parts it lacks of the run it holds, or a reset
   * when that run will not go on (`hadPreview`: the cursor holds parts and no reply replaced them in the snapshot).
   */
  private resumePreview(current: Chat, hadPreview: boolean, out: StreamEvent[]): void {
    const { generation, seq } = this.cursor;
    const local = this.opts.parts.current(this.chatId);
    const runGeneration = local?.generation ?? (current.status === 'running' ? current.generation : undefined);
    const resumes = hadPreview && runGeneration === generation;
    // A run the cursor names that ended without a reply is over (interrupted: the client keeps its text).
    const over = hadPreview && !resumes && !(current.status === 'waiting' && current.generation === generation);
    if (over) out.push({ type: 'preview_reset' });
    if (current.status !== 'running' && !local) this.stoppedGeneration = current.generation;
    if (runGeneration === undefined) return;
    this.preview = { generation: runGeneration, seq: resumes ? seq : 0 };
    if (!local) return;
    const texts = this.opts.parts.since(this.chatId, local.generation, this.preview.seq) ?? [];
    if (texts.length > 0) {
      this.preview.seq += texts.length;
      out.push({ type: 'message_part', text: texts.join(''), generation: local.generation, seq: this.preview.seq });
    }
    this.catchingUp = false;
  }

  private remoteTurn(): boolean {
    return this.turn.workerId !== null && this.turn.workerId !== this.opts.workerId && !this.opts.parts.current(this.chatId);
  }

  private previewSeq(generation: number): number {
    return this.preview?.generation === generation ? this.preview.seq : 0;
  }

  /** A turn on another replica: ask it for what this stream lacks (at most once a second while unanswered). */
  private askForParts(force = false): void {
    if (this.closed || !this.remoteTurn()) return;
    const now = Date.now();
    if (!force && now < this.wantUntil) return;
    this.wantUntil = now + wantRetryMs;
    void this.opts.relay.want({ chat: this.chatId, generation: this.turn.generation, after: this.previewSeq(this.turn.generation) });
  }

  /** Parts `seq…` of run `generation`, from this replica's turn or relayed from another. */
  private parts(generation: number, seq: number, texts: readonly string[], from: 'local' | 'relay'): void {
    if (generation <= this.stoppedGeneration || (this.preview && generation < this.preview.generation)) return;
    const out: StreamEvent[] = [];
    if (!this.preview || generation > this.preview.generation) {
      if (seq !== 1) return this.gap(from);
      if (this.preview && this.preview.seq > 0) out.push({ type: 'preview_reset' });
      this.preview = { generation, seq: 0 };
      if (generation > this.turn.generation) this.turn = { generation, workerId: this.turn.workerId };
    }
    const have = this.preview.seq;
    if (seq > have + 1) {
      if (out.length > 0) this.emit(out);
      return this.gap(from);
    }
    const fresh = texts.slice(have + 1 - seq);
    if (fresh.length === 0) return;
    if (this.catchingUp && fresh.length > 1) {
      this.preview.seq += fresh.length;
      out.push({ type: 'message_part', text: fresh.join(''), generation, seq: this.preview.seq });
    } else {
      for (const text of fresh) out.push({ type: 'message_part', text, generation, seq: ++this.preview.seq });
    }
    this.catchingUp = false;
    this.wantUntil = 0;
    this.emit(out);
  }

  private gap(from: 'local' | 'relay'): void {
    // This replica's own parts cannot have holes; a relayed hole is asked for again.
    if (from === 'local') return;
    this.opts.metrics.partGaps.inc();
    this.catchingUp = true;
    this.askForParts();
  }

  /** Events leave stamped with the cursor to resume from after each. */
  private emit(events: StreamEvent[]): void {
    for (const e of events) e.cursor = this.cursorAfter(e);
    this.sink(events);
  }

  /** The client's position once it has `e`: its newest message, and the parts it holds of a run. */
  private cursorAfter(e: StreamEvent): string {
    if (e.type === 'message_part') {
      this.shown = { afterId: this.shown.afterId, generation: e.generation, seq: e.seq };
    } else if (e.type === 'message') {
      // A reply replaces the partial text it completes.
      this.shown = e.message.role === 'assistant' ? { afterId: e.message.id, generation: 0, seq: 0 } : { ...this.shown, afterId: e.message.id };
      if (e.message.role === 'assistant' && this.preview) this.preview = { generation: this.preview.generation, seq: 0 };
    } else if (e.type === 'preview_reset') {
      this.shown = { afterId: this.shown.afterId, generation: 0, seq: 0 };
      if (this.preview) this.preview = { generation: this.preview.generation, seq: 0 };
    }
    return formatCursor(this.shown);
  }

  /**
   * Step 4: control-path reads are bounded by the caller's own deadline when it has one, else by the control
   * timeout (5 s by default); the subscription's end cancels them too. The timer is cleared when the read returns: a
   * timeout signal left to fire later would build an exception, stack and all, for nobody (one per read).
   */
  private async controlRead<T>(read: (opts: QueryOptions) => Promise<T>): Promise<T> {
    const remaining = this.ctx.deadline === undefined ? this.opts.controlReadTimeoutMs : Math.max(0, this.ctx.deadline - Date.now());
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), remaining).unref();
    const signals = [this.abort.signal, timeout.signal];
    if (this.ctx.signal) signals.push(this.ctx.signal);
    try {
      return await read({ signal: AbortSignal.any(signals) });
    } finally {
      clearTimeout(timer);
    }
  }

  private onNotice(payload: Buffer | undefined, err: ErrDroppedMessages | undefined): void {
    if (this.closed) return;
    let item: Item;
    if (err || !payload) item = 'dropped';
    else {
      try {
        item = { notice: JSON.parse(payload.toString()) as StreamNotice };
      } catch (parseErr) {
        this.log.warn({ err: parseErr }, 'chat stream: malformed notice ignored');
        return;
      }
      if (this.opts.hooks?.notice && !this.opts.hooks.notice(this.chatId, item.notice)) return;
    }
    if (this.ready) this.enqueue(item);
    else this.early.push(item);
  }

  /** Notices are handled one at a time, in order: a message catch-up completes before the status that follows it. */
  private enqueue(item: Item): void {
    this.chain = this.chain.then(() => (item === 'dropped' ? this.resync() : this.handle(item.notice)));
  }

  /** Notices may have been lost: re-read everything they would have told, and ask again for relayed parts. */
  private async resync(): Promise<void> {
    if (this.closed) return;
    let current: Chat | undefined;
    try {
      current = await this.controlRead((o) => this.opts.store.getChatByID(this.chat.id, o));
    } catch (err) {
      if (!this.closed) this.log.warn({ err }, 'chat stream: re-reading the chat after lost notices failed');
    }
    await this.catchUp();
    if (current && !this.closed) {
      // The row's retry state rides on the notice; its error, when it failed, follows the status.
      this.applyStatus({ ...statusNotice(current), ...(current.retry ? { retry: retryJson(current.retry) } : {}) }, current.status === 'error' ? turnState(current) : []);
    }
    this.refreshQueue();
    this.askForParts(true);
  }

  private async handle(notice: StreamNotice): Promise<void> {
    if (this.closed) return;
    if (notice.parts) return this.relayed(notice.parts);
    if (notice.after_message_id !== undefined && notice.after_message_id > this.lastMessageId) {
      // The notice carries its messages; when we hold the one before them there is no gap and nothing to read.
      if (notice.messages && notice.prev_message_id !== undefined && notice.prev_message_id <= this.lastMessageId) this.deliver(notice.messages);
      else await this.catchUp();
    }
    if (this.closed) return;
    if (notice.status) this.applyStatus(notice, notice.error ? [{ type: 'error', ...notice.error }] : []);
    else if (notice.error) this.emit([{ type: 'error', ...notice.error }]);
    if (notice.queue_update) {
      if (notice.version !== undefined && notice.version > this.version) this.version = notice.version;
      this.refreshQueue();
    }
  }

  private relayed(n: PartsNotice): void {
    // This replica's own turn reaches its streams directly; its relayed copy is for the others.
    const local = this.opts.parts.current(this.chatId);
    if (local && local.generation >= n.generation) return;
    let whole = this.assembler.accept(n);
    if (!whole) return;
    // A catch-up in several notices reaches the client as one part, like a local late joiner's.
    const c = this.catchUpParts;
    const joins = c !== undefined && c.generation === whole.generation && c.seq + c.texts.length === whole.seq;
    if (joins) whole = { generation: c.generation, seq: c.seq, texts: c.texts.concat(whole.texts) };
    this.catchUpParts = undefined;
    if (n.upto !== undefined && whole.seq + whole.texts.length - 1 < n.upto) {
      this.catchUpParts = whole;
      return;
    }
    this.opts.metrics.partRelayLatency.observe(Math.max(0, Date.now() - n.ts) / 1000);
    this.parts(whole.generation, whole.seq, whole.texts, 'relay');
  }

  /** A status from a notice or a re-read; skipped when this stream has shown a newer version already. */
  private applyStatus(n: StreamNotice, extra: StreamEvent[]): void {
    // A run that is over stays over, even when this stream has shown the status itself already.
    if (n.status !== 'running' && n.generation !== undefined) this.stoppedGeneration = Math.max(this.stoppedGeneration, n.generation);
    if (n.version !== undefined) {
      if (n.version <= this.version) return;
      this.version = n.version;
    }
    const status = n.status!;
    const generation = n.generation ?? this.turn.generation;
    const out: StreamEvent[] = [{ type: 'status', status, last_error: n.last_error ?? null }];
    if (status === 'running') {
      if (generation >= this.turn.generation) this.turn = { generation, workerId: n.worker_id ?? this.turn.workerId };
      if (this.preview && this.preview.generation < generation && this.preview.seq > 0) out.push({ type: 'preview_reset' });
    } else {
      this.turn = { generation: Math.max(generation, this.turn.generation), workerId: null };
      this.stoppedGeneration = Math.max(this.stoppedGeneration, generation);
      // A run sent back to the queue (its worker died, shutdown) or that failed will not go on; an interrupted
      // one keeps its text.
      if (status !== 'waiting' && this.preview && this.preview.generation <= generation && this.preview.seq > 0) out.push({ type: 'preview_reset' });
    }
    // A retry is a newer run of a running turn: the reset above covers the failed attempt's parts.
    if (n.retry) out.push({ type: 'retry', ...n.retry });
    out.push(...extra);
    this.emit(out);
    if (status === 'running') this.askForParts(true);
  }

  private deliver(messages: MessageJson[]): void {
    const fresh = messages.filter((m) => m.id > this.lastMessageId);
    if (fresh.length === 0) return;
    this.lastMessageId = fresh.at(-1)!.id;
    this.emit(fresh.map((message) => ({ type: 'message' as const, message })));
  }

  private async catchUp(): Promise<void> {
    this.opts.metrics.catchupQueries.inc();
    await this.streamMessages('catch-up');
  }

  /**
   * Sends the messages after the cursor page by page, advancing it; with a backpressured sink each page waits until
   * the client has taken the one before, so one subscriber holds about one page. A failed read is logged; the next
   * notice retries from the cursor. Returns when the newest assistant reply among them was made.
   */
  private async streamMessages(what: string, lead: StreamEvent[] = []): Promise<Date | undefined> {
    let limit = firstPage;
    let newestReply: Date | undefined;
    // `lead` (the snapshot's status) shares the first frame with the first page.
    const send = (events: StreamEvent[]) => {
      if (events.length === 0 && lead.length === 0) return;
      this.emit([...lead.splice(0), ...events]);
    };
    try {
      for (;;) {
        const page = await this.controlRead((o) => this.opts.store.getChatMessagePage(this.chat.id, this.lastMessageId, limit, pageBytes, o));
        if (this.closed) return newestReply;
        const { messages } = page;
        for (const m of messages) if (m.role === 'assistant') newestReply = m.createdAt;
        send(messages.map((m) => ({ type: 'message' as const, message: messageJson(m) })));
        if (messages.length > 0) this.lastMessageId = messages[messages.length - 1]!.id;
        if (!page.more) return newestReply;
        const bytes = messages.reduce((n, m) => n + Buffer.byteLength(m.content), 0);
        limit = Math.max(1, Math.min(messagePage, Math.floor((pageBytes * messages.length) / Math.max(1, bytes))));
        await this.sink.drained?.();
        if (this.closed) return newestReply;
      }
    } catch (err) {
      if (this.closed) return newestReply;
      this.log.warn({ err }, `chat stream: ${what} read of messages failed; the next notice retries`);
      send([]);
      return newestReply;
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
          const queued = await this.controlRead((o) => this.opts.store.getQueuedChatMessages(this.chat.id, o));
          if (!this.closed) this.emit([{ type: 'queue_update', queued: queued.map(queuedJson) }]);
        } catch (err) {
          if (!this.closed) this.log.warn({ err }, 'chat stream: queue refresh failed');
        }
      } while (state.again && !this.closed);
      this.queueRefresh = undefined;
    })();
  }
}

/** What a row says beyond its status: a failed turn's error, a retry waiting for its next attempt. */
function turnState(c: Chat): StreamEvent[] {
  if (c.status === 'error' && c.lastError !== null) return [{ type: 'error', message: c.lastError, kind: c.lastErrorKind ?? 'generic', retryable: false }];
  if (c.status === 'running' && c.retry) return [{ type: 'retry', ...retryJson(c.retry) }];
  return [];
}
