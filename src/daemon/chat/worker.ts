import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Logger } from '../observability/logger.js';
import { isConnectionError } from '../postgres/errors.js';
import { StatementBatcher } from '../postgres/batcher.js';
import type { Database } from '../postgres/pool.js';
import { retryWhileUnavailable } from '../postgres/retry.js';
import type { Cancel, Subscriber } from '../pubsub/pubsub.js';
import {
  acquirePendingChats,
  endChatTurns,
  getChatByID,
  heartbeatChats,
  recoverStaleChats,
  releaseWorkerChats,
  setChatRetry,
  type EndInput,
  type EndOutput,
  type TurnClaimer,
} from '../store/chats.js';
import { deleteExpiredIdempotencyKeys } from '../store/idempotency.js';
import { getLatestChatMessageID } from '../store/messages.js';
import type { Chat, ChatErrorKind, ChatProviderType } from '../store/types.js';
import type { ResolvedChatConfig } from './config.js';
import { ModelResolutionError, type ConfigCache } from './configCache.js';
import { interruptChannel, messageJson, pendingChannel, retryJson, type ErrorJson } from './events.js';
import type { ChatMetrics } from './metrics.js';
import { statusNotice, type ChatNotifier } from './notifier.js';
import type { LocalParts } from './parts.js';
import { supersedeChannel } from './queueFront.js';
import { ProviderError, type ModelProvider, type PromptMessage } from './providers/provider.js';
import { redactSecrets } from './redact.js';
import type { ResolvedModel, TurnEndListener, TurnResult } from './turnResult.js';

/** Messages of history a turn sends to the model. */
const historyLimit = 50;
/** Chats claimed per statement: a burst of new chats costs a few claims, not one pool round trip each. */
const claimBatch = 100;
/** Idempotency keys are promised for 24 h; swept hourly once two days old. */
const idempotencyKeyLifetimeSeconds = 48 * 3600;
const idempotencySweepMs = 3600_000;

/** Why a turn was stopped from outside. `superseded`: a message was promoted past it; it ends with its partial answer. */
class TurnStop extends Error {
  constructor(readonly why: 'interrupted' | 'lost' | 'shutdown' | 'superseded') {
    super(`turn stopped: ${why}`);
  }
}

/** A worker's id: the host and process, and a random part for workers restarted under the same pid. */
export const newWorkerId = () => `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;

/** A model call's failure as the chat shows it: a safe message and its kind. */
interface TurnFailure {
  message: string;
  kind: ChatErrorKind;
}

export interface ChatWorkerOptions {
  id?: string;
  db: Database;
  subscriber: Subscriber;
  notifier: ChatNotifier;
  parts: Pick<LocalParts, 'beginTurn' | 'publish' | 'finish' | 'endTurn'>;
  configCache: Pick<ConfigCache, 'resolve'>;
  providers: Record<ChatProviderType, ModelProvider>;
  metrics: ChatMetrics;
  logger: Logger;
  listeners: readonly TurnEndListener[];
  config: Pick<ResolvedChatConfig, 'heartbeatIntervalMs' | 'staleAfterMs' | 'pollIntervalMs' | 'maxConcurrentTurns' | 'llmRetries' | 'llmRetryBaseDelayMs' | 'llmRetryMaxDelayMs'>;
}

/**
 * Claims pending chats and runs their turns. Woken at once by local sends and by `chat:pending` from other
 * replicas, with a poll as the fallback; heartbeats its running chats and returns stale ones of dead replicas to
 * `pending`.
 */
export class ChatWorker {
  readonly id: string;
  /** Who a send or create claims its turn for, and the history it reads for it. */
  readonly claimer: TurnClaimer;
  private readonly turns = new Map<string, { abort: AbortController; done: Promise<void> }>();
  /** Slots held for sends and creates whose statement may claim their turn (`reserve`), until `adopt` or `release`. */
  private reserved = 0;
  private reservationsSettled: (() => void) | undefined;
  private claiming = false;
  private again = false;
  private closed = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly cancels: Cancel[] = [];
  private readonly log: Logger;
  /** Set while the database is unreachable, so an outage logs one warning per kind of work, not one per second. */
  private readonly failing = new Set<string>();
  /** Turns that end in the same moment end in one statement. */
  private readonly ends: StatementBatcher<EndInput, EndOutput | undefined>;

  constructor(private readonly opts: ChatWorkerOptions) {
    this.id = opts.id ?? newWorkerId();
    this.claimer = { workerId: this.id, historyLimit };
    this.log = opts.logger.child({ component: 'chat-worker', workerId: this.id });
    this.ends = new StatementBatcher((inputs) => endChatTurns(opts.db, this.id, inputs), { maxItems: 64, maxBytes: 4 << 20, sizeOf: (i) => i.text?.length ?? 0 });
  }

  async start(): Promise<void> {
    const { subscriber, config } = this.opts;
    this.cancels.push(await subscriber.subscribe(pendingChannel, () => void this.wake()));
    this.cancels.push(await subscriber.subscribe(interruptChannel, (payload) => this.stop(payload.toString(), 'interrupted')));
    this.cancels.push(await subscriber.subscribe(supersedeChannel, (payload) => this.stop(payload.toString(), 'superseded')));
    const every = (ms: number, fn: () => void) => this.timers.push(setInterval(fn, ms).unref());
    every(config.pollIntervalMs, () => this.wake());
    every(config.heartbeatIntervalMs, () => void this.heartbeat());
    every(Math.min(config.heartbeatIntervalMs, config.staleAfterMs), () => void this.recoverStale());
    every(idempotencySweepMs, () => void this.sweepIdempotencyKeys());
    this.wake();
  }

  /**
   * Claims what is pending now; calls while a claim loop runs make it go round once more. Returns false when this
   * replica has no room for another turn: then other replicas must be told (`chat:pending`).
   */
  wake(): boolean {
    if (this.closed || this.busy() >= this.opts.config.maxConcurrentTurns) return false;
    if (this.claiming) {
      this.again = true;
      return true;
    }
    this.claiming = true;
    void this.claimLoop().finally(() => (this.claiming = false));
    return true;
  }

  /** Turns running on this replica now. */
  runningTurns(): number {
    return this.turns.size;
  }

  private busy(): number {
    return this.turns.size + this.reserved;
  }

  /** A slot for a turn that a send or create may claim in its own statement; false when this replica has no room. */
  reserve(): boolean {
    if (this.closed || this.busy() >= this.opts.config.maxConcurrentTurns) return false;
    this.reserved++;
    return true;
  }

  /** Runs a turn that a send or create claimed for this worker, in the slot it reserved. */
  adopt(chat: Chat, history: PromptMessage[]): void {
    this.release();
    // Closing waits for every reservation, then hands back all this worker's chats: this one among them.
    if (this.closed) return;
    this.startTurn(chat, history, true);
  }

  /** Gives back a slot that no turn took. */
  release(): void {
    this.reserved--;
    if (this.reserved === 0) this.reservationsSettled?.();
  }

  /**
   * Stops claiming, stops running turns and hands their chats back as `pending` for any replica. The hand-back is
   * retried while the database is away, until `deadline` aborts; then the stale sweep of another replica takes over.
   */
  async close(deadline?: AbortSignal): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await Promise.all(this.cancels.map((c) => c()));
    // A send whose statement is still out may claim a turn for this worker: it is handed back below with the rest.
    if (this.reserved > 0) await new Promise<void>((resolve) => (this.reservationsSettled = resolve));
    for (const chatId of this.turns.keys()) this.stop(chatId, 'shutdown');
    await Promise.all([...this.turns.values()].map((t) => t.done));
    let released: Chat[];
    try {
      released = await retryWhileUnavailable(() => releaseWorkerChats(this.opts.db, this.id), {
        signal: deadline,
        onRetry: (err) => this.warnOnce('release', err, 'chat worker: cannot hand running chats back yet; retrying until the shutdown deadline'),
      });
    } catch (err) {
      this.log.warn({ err }, 'chat worker: running chats could not be handed back; another replica takes them over after the stale timeout');
      return;
    }
    await Promise.all(released.map((chat) => Promise.all([this.opts.notifier.status(chat), this.opts.notifier.pending(chat.id)])));
    if (released.length > 0) this.log.info({ chats: released.length }, 'chat worker: running chats returned to pending');
  }

  private stop(chatId: string, why: TurnStop['why']): void {
    const turn = this.turns.get(chatId);
    if (turn && !turn.abort.signal.aborted) turn.abort.abort(new TurnStop(why));
  }

  private async claimLoop(): Promise<void> {
    try {
      do {
        this.again = false;
        while (!this.closed && this.busy() < this.opts.config.maxConcurrentTurns) {
          const limit = Math.min(claimBatch, this.opts.config.maxConcurrentTurns - this.busy());
          const claimed = await acquirePendingChats(this.opts.db, this.id, limit, historyLimit);
          this.recovered('claim');
          for (const { chat, history } of claimed) this.startTurn(chat, history);
          if (claimed.length < limit) break;
        }
      } while (this.again && !this.closed);
    } catch (err) {
      if (!this.closed) this.warnOnce('claim', err, 'chat worker: claiming pending chats failed; retrying on the next wake');
    }
  }

  /** `announced`: the statement that claimed the turn told the chat's viewers it runs (a send or create). */
  private startTurn(chat: Chat, history: PromptMessage[], announced = false): void {
    const abort = new AbortController();
    const done = this.runTurn(chat, history, abort.signal, announced)
      .catch((err: unknown) => this.log.error({ err, chatId: chat.id }, 'chat worker: turn failed unexpectedly'))
      .finally(() => this.turns.delete(chat.id));
    this.turns.set(chat.id, { abort, done });
  }

  private async runTurn(chat: Chat, history: PromptMessage[], signal: AbortSignal, announced: boolean): Promise<void> {
    const { notifier, parts, metrics } = this.opts;
    const started = performance.now();
    parts.beginTurn(chat.id, chat.generation);
    if (!announced) void notifier.status(chat, { worker_id: this.id });
    let model: ResolvedModel | undefined;
    let text: string | undefined;
    let failure: TurnFailure | undefined;
    let partial = '';
    for (let attempt = 1; ; attempt++) {
      try {
        model = await this.opts.configCache.resolve(chat.lastModelConfigId);
        partial = '';
        text = await this.opts.providers[model.providerType].complete({
          model,
          messages: history,
          signal,
          onPart: (part) => {
            partial += part;
            parts.publish(chat.id, part);
          },
        });
        failure = undefined;
        break;
      } catch (err) {
        if (signal.aborted && signal.reason instanceof TurnStop && signal.reason.why === 'superseded') {
          // Ends like a finished turn: the partial answer is kept and the promoted message runs next.
          text = partial;
          failure = undefined;
          break;
        }
        if (signal.aborted && signal.reason instanceof TurnStop) {
          parts.endTurn(chat.id);
          // Interrupt and archive already set the chat's status; shutdown releases it in bulk; a lost claim is another replica's.
          this.ended({ chat, model, outcome: signal.reason.why === 'interrupted' ? 'interrupted' : 'abandoned' });
          return;
        }
        failure = this.failure(err, chat.id, attempt);
        if (!(err instanceof ProviderError && err.retryable) || attempt > this.opts.config.llmRetries) break;
        const retried = await this.retryLater(chat, attempt, err, signal);
        if (retried === 'stopped') {
          parts.endTurn(chat.id);
          this.ended({ chat, model, outcome: signal.reason instanceof TurnStop && signal.reason.why === 'interrupted' ? 'interrupted' : 'abandoned' });
          return;
        }
        if (retried === 'unrecorded') break;
      }
    }
    parts.finish(chat.id);

    let end: EndOutput | undefined;
    try {
      end = await this.endDurably(chat, text, failure, signal);
    } catch (err) {
      // Stopped while retrying (interrupt, takeover, shutdown), or a failure no retry mends.
      if (!(signal.aborted && signal.reason instanceof TurnStop)) this.log.error({ err, chatId: chat.id }, 'chat worker: the turn could not be ended');
      this.ended({ chat, model, outcome: 'abandoned' });
      return;
    } finally {
      parts.endTurn(chat.id);
    }
    metrics.turns.inc();
    metrics.turnDuration.observe((performance.now() - started) / 1000);
    if (!end) {
      this.ended({ chat, model, outcome: 'abandoned' });
      return;
    }
    if (failure !== undefined) {
      metrics.turnsFailed.inc();
      this.log.warn({ chatId: chat.id, kind: failure.kind }, 'chat worker: the turn ended in error');
    }
    const { chat: after, added, prevMessageId } = end;
    const promoted = after.status === 'pending';
    const error: ErrorJson | undefined = failure && { ...failure, retryable: false };
    await notifier.status(after, {
      ...(added.length > 0 ? { after_message_id: added.at(-1)!.id, messages: added.map(messageJson), prev_message_id: prevMessageId } : {}),
      ...(promoted ? { queue_update: true } : {}),
      ...(error ? { error } : {}),
    });
    if (promoted) {
      if (!this.wake()) await notifier.pending(chat.id);
      // The agent goes on with the queued message: the owner hears when the chat finally waits.
      return;
    }
    this.ended({ chat: after, model, outcome: failure !== undefined ? 'error' : 'waiting', finalText: text, lastError: failure?.message });
  }

  /** The safe message users see; what the upstream said goes to the log only, its secrets redacted. */
  private failure(err: unknown, chatId: string, attempt: number): TurnFailure {
    if (err instanceof ProviderError) {
      this.log.warn({ chatId, kind: err.kind, attempt, upstream: redactSecrets(err.detail) }, 'chat worker: the model call failed');
      return { message: err.message, kind: err.kind };
    }
    if (err instanceof ModelResolutionError) return { message: err.message, kind: 'config' };
    this.log.warn({ chatId, attempt, err: redactSecrets(err instanceof Error ? err.message : String(err)) }, 'chat worker: the model call failed');
    return { message: 'The model call failed.', kind: 'generic' };
  }

  /**
   * Records the retry on the chat row (a client connecting mid-backoff sees it), tells the chat's viewers, and waits.
   * The next attempt is a new generation: viewers drop the failed attempt's parts. `unrecorded`: the row could not be
   * written, so the turn ends with the failure instead of retrying unseen.
   */
  private async retryLater(chat: Chat, attempt: number, err: ProviderError, signal: AbortSignal): Promise<'retry' | 'stopped' | 'unrecorded'> {
    const { config } = this.opts;
    const backoff = Math.min(config.llmRetryMaxDelayMs, config.llmRetryBaseDelayMs * 2 ** (attempt - 1));
    const delayMs = Math.round(Math.min(config.llmRetryMaxDelayMs, err.retryAfterMs ?? backoff * (0.75 + Math.random() * 0.5)));
    let after: Chat | undefined;
    try {
      after = await setChatRetry(this.opts.db, chat.id, this.id, attempt, err.kind, delayMs);
    } catch (writeErr) {
      this.warnOnce('retry', writeErr, 'chat worker: could not record a retry; ending the turn with its failure');
      return 'unrecorded';
    }
    if (!after) return 'stopped';
    this.opts.metrics.retries.inc({ kind: err.kind });
    this.opts.parts.finish(chat.id);
    this.opts.parts.beginTurn(chat.id, after.generation);
    await this.opts.notifier.stream(chat.id, { ...statusNotice(after), retry: retryJson(after.retry!) });
    try {
      await sleep(delayMs, undefined, { signal });
    } catch {
      return 'stopped';
    }
    return 'retry';
  }

  /**
   * Writes the turn's end, retrying while the database is unavailable: a chat left `running` on a live replica would
   * wait minutes for the stale sweep. The turn stays in `turns` meanwhile, so the heartbeat keeps covering the chat
   * and stops the retries (through `signal`) when another replica took it over.
   */
  private async endDurably(chat: Chat, text: string | undefined, error: TurnFailure | undefined, signal: AbortSignal) {
    let ambiguous = false;
    const end = await retryWhileUnavailable(() => this.ends.submit({ chatId: chat.id, text, error }), {
      signal,
      onRetry: (err, attempt, delayMs) => {
        ambiguous = true;
        this.log.warn({ err: (err as Error).message, chatId: chat.id, attempt, delayMs }, 'chat worker: ending the turn failed; retrying');
      },
    });
    // A failed attempt may have committed before its answer was lost; then no notice went out for it, so tell the
    // chat's viewers to read up to its newest message.
    if (!end && ambiguous) await this.announceAfterAmbiguousEnd(chat.id);
    return end;
  }

  private async announceAfterAmbiguousEnd(chatId: string): Promise<void> {
    try {
      const [after, latest] = await Promise.all([getChatByID(this.opts.db, chatId), getLatestChatMessageID(this.opts.db, chatId)]);
      if (after) await this.opts.notifier.status(after, { after_message_id: latest });
    } catch (err) {
      this.log.warn({ err, chatId }, 'chat worker: could not re-announce a turn whose end was retried');
    }
  }

  private warnOnce(kind: string, err: unknown, msg: string): void {
    if (!isConnectionError(err)) {
      this.log.warn({ err }, msg);
      return;
    }
    if (this.failing.has(kind)) return;
    this.failing.add(kind);
    this.log.warn({ err: (err as Error).message }, `${msg} (the database is unavailable; said once until it is back)`);
  }

  private recovered(kind: string): void {
    if (this.failing.delete(kind)) this.log.info(`chat worker: ${kind} works again`);
  }

  private ended(r: { chat: Chat; model: ResolvedModel | undefined; outcome: TurnResult['outcome']; finalText?: string; lastError?: string }): void {
    // A turn that failed before resolving its model has nothing to push about it beyond its error.
    const model: ResolvedModel = r.model ?? { providerId: '', providerType: 'fake', modelConfigId: r.chat.lastModelConfigId ?? '', model: '' };
    const result: TurnResult = {
      chatId: r.chat.id,
      ownerId: r.chat.ownerId,
      title: r.chat.title,
      outcome: r.outcome,
      model,
      ...(r.finalText !== undefined ? { finalText: r.finalText } : {}),
      ...(r.lastError !== undefined ? { lastError: r.lastError } : {}),
    };
    for (const listener of this.opts.listeners) {
      try {
        listener.turnEnded(result);
      } catch (err) {
        this.log.error({ err, chatId: r.chat.id }, 'chat worker: a turn-end listener threw');
      }
    }
  }

  private async heartbeat(): Promise<void> {
    const ids = [...this.turns.keys()];
    if (ids.length === 0 || this.closed) return;
    try {
      const owned = await heartbeatChats(this.opts.db, this.id, ids);
      this.recovered('heartbeat');
      for (const id of ids) if (!owned.has(id)) this.stop(id, 'lost');
    } catch (err) {
      this.warnOnce('heartbeat', err, 'chat worker: heartbeat failed');
    }
  }

  private async sweepIdempotencyKeys(): Promise<void> {
    try {
      await deleteExpiredIdempotencyKeys(this.opts.db, idempotencyKeyLifetimeSeconds);
    } catch (err) {
      this.warnOnce('idempotency key sweep', err, 'chat worker: sweeping expired idempotency keys failed');
    }
  }

  private async recoverStale(): Promise<void> {
    if (this.closed) return;
    try {
      const recovered = await recoverStaleChats(this.opts.db, this.opts.config.staleAfterMs / 1000);
      this.recovered('stale sweep');
      if (recovered.length === 0) return;
      this.log.warn({ chats: recovered.map((c) => c.id) }, 'chat worker: chats of a silent replica returned to pending');
      const claiming = this.wake();
      await Promise.all(recovered.map((chat) => Promise.all([this.opts.notifier.status(chat), claiming ? undefined : this.opts.notifier.pending(chat.id)])));
    } catch (err) {
      if (!this.closed) this.warnOnce('stale sweep', err, 'chat worker: stale-turn recovery failed');
    }
  }
}
