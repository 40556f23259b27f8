import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import { Pool } from 'undici';
import WebSocket from 'ws';

import { LatencyRecorder } from '../daemon/observability/quantiles.js';
import type { FailureKind } from './report.js';

/** Attempts of one POST through 503s and connection errors (about 20 s of backoff in all). */
const maxAttempts = 15;

/**
 * Chats being created or opening their stream at once, below Node's default accept backlog (511). libuv accepts one connection per
 * loop turn, so a busy daemon drains a burst of thousands slowly; past the backlog the kernel drops SYNs and the
 * clients wait out TCP's backoff (1 s … 63 s), which would measure the kernel's retry timer, not the daemon.
 */
const maxOpeningStreams = 500;

/**
 * The scaletest's clients: each chat opens its stream, sends a message, waits for `waiting`, and repeats. Built to
 * stay cheap at 5000 concurrent chats on a small machine: HTTP over a bounded keep-alive pool, one WebSocket per chat
 * without compression, no per-event allocations beyond the JSON parse, one timer per waiting turn.
 */
export interface ChatOwner {
  token: string;
  /** Push subscriptions this owner has: each finished turn should deliver this many pushes. */
  subscriptions: number;
}

export interface ChatRunnerOptions {
  /**
   * The replicas: chat i is created and sent to on baseUrls[i % n] and streamed from the next one, so with more
   * than one every part a viewer gets crossed from one replica to another.
   */
  baseUrls: string[];
  /** Chat i belongs to owners[i % owners.length]. */
  owners: ChatOwner[];
  chats: number;
  turns: number;
  /** Chats active at once; the rest start as slots free up. */
  concurrency: number;
  /** A turn that has not reached `waiting` after this long fails as `timeout`. */
  turnTimeoutMs: number;
  /** Stops the run: unfinished chats fail as `interrupted`, or as `timeout` when aborted with `timeoutReason`. */
  signal: AbortSignal;
  timeoutReason?: unknown;
  /** Keep-alive connections for the HTTP calls. Default 64. */
  httpConnections?: number;
  /** Open loop: start a new chat every 1/rate s whatever is still running (concurrency then only caps). */
  rate?: number;
  /** Turn n sends prompts[(n - 1) % length]; without them a numbered filler message. */
  prompts?: string[];
  /** Parts in every reply, when the scaletest's LLM mock serves them: a reply seen without its parts lacks them all. */
  partsPerReply?: number;
}

export interface RunProgress {
  turnsCompleted: number;
  chatsPassed: number;
  chatsFailed: number;
  active: number;
  failures: Partial<Record<FailureKind, number>>;
  /** Pushes the finished turns should have caused. */
  pushesExpected: number;
}

/** Parts of replies as one viewer pair (API replica → stream replica) saw them. */
export interface PartCounts {
  /** Parts the replies were made of (the last `seq` of each reply's run). */
  sent: number;
  /** Parts that reached the viewer (a late joiner's one part counts for every part it holds). */
  received: number;
  /** Parts missing: holes in `seq`, or a reply whose streamed text differs from the saved one. */
  gaps: number;
  duplicates: number;
}

const emptyPartCounts = (): PartCounts => ({ sent: 0, received: 0, gaps: 0, duplicates: 0 });

/** A chat's failure, with the class the report counts it under. */
export class ChatFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
  }
}

/** One stream event, read leniently: only the fields the runner needs. */
interface StreamEvent {
  type?: string;
  status?: string;
  chat?: { status?: string; last_error?: string | null };
  message?: { role?: string; content?: string } | string;
  role?: string;
  text?: string;
  generation?: number;
  seq?: number;
  last_error?: string | null;
  error?: string;
}

function eventStatus(e: StreamEvent): string | undefined {
  return e.status ?? e.chat?.status;
}

interface TurnWait {
  turn: number;
  sentAt: number;
  runningAt?: number;
  firstPartAt?: number;
  resolve(): void;
  reject(err: ChatFailure): void;
  timer: NodeJS.Timeout;
}

export class ChatRunner {
  readonly progress: RunProgress = { turnsCompleted: 0, chatsPassed: 0, chatsFailed: 0, active: 0, failures: {}, pushesExpected: 0 };
  readonly timeToRunning = new LatencyRecorder();
  readonly timeToFirstPart = new LatencyRecorder();
  readonly turnDuration = new LatencyRecorder();
  /** The first failure of each kind. */
  readonly failureSamples: Array<{ kind: FailureKind; message: string }> = [];
  private readonly http: Pool[];
  private readonly wsBase: string[];
  private nextChat = 0;
  private opening = 0;
  private readonly openingQueue: Array<() => void> = [];
  /** Every chat the daemon created, with the token that owns it: what a remote run archives afterwards. */
  readonly created: Array<{ id: string; token: string }> = [];
  /** Turn durations (s) since the last takeRecentTurnDurations(): the timeline's percentiles per interval. */
  private recent: number[] = [];
  /**
   * What stops each active chat when the run is stopped. One listener on the run's signal serves them all: an
   * AbortSignal checks every listener it holds on each add, so a listener per chat or per request cost the load
   * generator time proportional to the chats in flight, on every request.
   */
  private readonly onStop = new Set<() => void>();
  /** By viewer pair, `<api replica>→<stream replica>` (1-based, in --url order). */
  readonly parts: Record<string, PartCounts> = {};

  constructor(private readonly opts: ChatRunnerOptions) {
    const connections = Math.max(8, Math.ceil((opts.httpConnections ?? 64) / opts.baseUrls.length));
    this.http = opts.baseUrls.map((u) => new Pool(new URL(u).origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 }));
    this.wsBase = opts.baseUrls.map((u) => {
      const base = new URL(u);
      base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
      return base.origin;
    });
    // Requests in flight end with their pools; chats waiting on a turn are told through `onStop`.
    opts.signal.addEventListener(
      'abort',
      () => {
        for (const h of this.http) void h.destroy().catch(() => undefined);
        for (const stop of this.onStop) stop();
      },
      { once: true },
    );
  }

  /** Chat i talks to one replica and streams from the next. */
  private replicas(index: number): { api: number; stream: number } {
    const n = this.opts.baseUrls.length;
    return { api: index % n, stream: (index + 1) % n };
  }

  /**
   * Runs every chat; resolves when all have passed or failed. `barrier` holds every runner until it resolves, so
   * they start together.
   */
  async run(barrier: Promise<void>): Promise<void> {
    if (this.opts.rate !== undefined) return this.runOpenLoop(barrier, this.opts.rate);
    const workers = Array.from({ length: Math.min(this.opts.concurrency, this.opts.chats) }, async () => {
      await barrier;
      for (let i = this.nextChat++; i < this.opts.chats; i = this.nextChat++) {
        if (this.opts.signal.aborted) {
          this.fail(this.stopped('stopped before it started'));
          continue;
        }
        await this.runChat(i);
      }
    });
    try {
      await Promise.all(workers);
    } finally {
      await Promise.all(this.http.map((h) => h.close().catch(() => undefined)));
    }
  }

  /** Arrivals on a fixed schedule, so a slow daemon meets the same offered load (k6's arrival-rate executors). */
  private async runOpenLoop(barrier: Promise<void>, rate: number): Promise<void> {
    await barrier;
    const started = performance.now();
    const running: Array<Promise<void>> = [];
    try {
      for (let i = 0; i < this.opts.chats; i++) {
        const due = started + (i * 1000) / rate - performance.now();
        if (due > 0) await sleep(due, undefined, { signal: this.opts.signal }).catch(() => undefined);
        if (this.opts.signal.aborted || this.progress.active >= this.opts.concurrency) {
          this.fail(this.opts.signal.aborted ? this.stopped('stopped before it started') : new ChatFailure('dropped', `arrival ${i} found --concurrency chats still running`));
          continue;
        }
        running.push(this.runChat(i));
      }
      await Promise.all(running);
    } finally {
      await Promise.all(this.http.map((h) => h.close().catch(() => undefined)));
    }
  }

  takeRecentTurnDurations(): number[] {
    const r = this.recent;
    this.recent = [];
    return r;
  }

  private prompt(index: number, turn: number): string {
    const p = this.opts.prompts;
    return p && p.length > 0 ? p[(turn - 1) % p.length]! : `scaletest chat ${index} turn ${turn}`;
  }

  /** Why a chat stopped when the run was stopped under it. */
  private stopped(what: string): ChatFailure {
    const deadline = this.opts.timeoutReason !== undefined && this.opts.signal.reason === this.opts.timeoutReason;
    return deadline ? new ChatFailure('timeout', `the run's --timeout passed: ${what}`) : new ChatFailure('interrupted', what);
  }

  private fail(err: ChatFailure): void {
    this.progress.chatsFailed++;
    this.progress.failures[err.kind] = (this.progress.failures[err.kind] ?? 0) + 1;
    // The first failure of each kind: enough to start debugging from, bounded whatever the run.
    if (!this.failureSamples.some((s) => s.kind === err.kind)) this.failureSamples.push({ kind: err.kind, message: err.message });
  }

  /**
   * POSTs as a careful client does: one Idempotency-Key for every attempt, retried on connection errors and 503 (the
   * daemon's database is away) with a capped backoff, so a send whose answer was lost never makes a second turn.
   */
  private async post(replica: number, path: string, token: string, body: unknown, kind: FailureKind): Promise<unknown> {
    const headers = { 'content-type': 'application/json', 'coder-session-token': token, 'idempotency-key': randomUUID() };
    const payload = JSON.stringify(body);
    for (let attempt = 1; ; attempt++) {
      let res;
      try {
        res = await this.http[replica]!.request({ path, method: 'POST', headers, body: payload });
      } catch (err) {
        if (this.opts.signal.aborted) throw this.stopped('stopped during a request');
        if (attempt < maxAttempts) {
          await this.backoff(attempt);
          continue;
        }
        throw new ChatFailure(kind, `POST ${path}: ${(err as Error).message}`);
      }
      const text = await res.body.text().catch(() => '');
      if (res.statusCode === 503 && attempt < maxAttempts) {
        await this.backoff(attempt);
        continue;
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        const msg = (() => {
          try {
            return (JSON.parse(text) as { message?: string }).message ?? text;
          } catch {
            return text;
          }
        })();
        throw new ChatFailure(kind, `POST ${path.replace(/chats\/[^/]+/, 'chats/{chat}')} answered ${res.statusCode}: ${msg.slice(0, 200)}`);
      }
      return text === '' ? undefined : JSON.parse(text);
    }
  }

  private async backoff(attempt: number): Promise<void> {
    try {
      await sleep(Math.min(2000, 50 * 2 ** attempt) * (0.5 + Math.random()), undefined, { signal: this.opts.signal });
    } catch {
      throw this.stopped('stopped while retrying a request');
    }
  }

  private async runChat(index: number): Promise<void> {
    const owner = this.opts.owners[index % this.opts.owners.length]!;
    const { signal, turns, turnTimeoutMs } = this.opts;
    this.progress.active++;
    let ws: WebSocket | undefined;
    let wait: TurnWait | undefined;
    let assistantMessages = 0;
    let status: string | undefined;
    let lastError: string | undefined;
    let ended: ChatFailure | undefined;
    const where = this.replicas(index);
    const pair = `${where.api + 1}→${where.stream + 1}`;
    const counts = (this.parts[pair] ??= emptyPartCounts());
    /** The reply streaming now: its run, its last part, its text. A first part may hold all parts so far (late joiner). */
    let preview: { generation: number; seq: number; text: string } | undefined;
    let joined = false;
    const onPart = (e: StreamEvent) => {
      const generation = e.generation ?? 0;
      const seq = e.seq ?? 0;
      if (!preview || generation > preview.generation) {
        // Only the stream's first part of a run may start past seq 1: it then holds all the parts before it.
        if (seq > 1 && joined) counts.gaps += seq - 1;
        preview = { generation, seq: 0, text: '' };
      } else if (generation < preview.generation) return;
      joined = true;
      if (seq <= preview.seq) {
        counts.duplicates++;
        return;
      }
      if (seq > preview.seq + 1 && preview.seq > 0) counts.gaps += seq - preview.seq - 1;
      counts.received += seq - preview.seq;
      preview.seq = seq;
      preview.text += e.text ?? '';
    };
    const onReply = (content: string | undefined) => {
      const expected = this.opts.partsPerReply;
      if (!preview) {
        // The stream opens after the chat is made: a first turn that ended by then had no viewer to miss parts.
        if (wait?.turn === 1) return;
        counts.sent += expected ?? 0;
        counts.gaps += expected ?? 0;
        return;
      }
      counts.sent += Math.max(preview.seq, expected ?? 0);
      if (expected !== undefined && preview.seq < expected) counts.gaps += expected - preview.seq;
      else if (content !== undefined && content !== preview.text) counts.gaps++;
      preview = undefined;
    };

    const finishIfDone = () => {
      if (wait && status === 'waiting' && assistantMessages >= wait.turn) wait.resolve();
    };
    const onEvent = (e: StreamEvent) => {
      const now = performance.now();
      switch (e.type) {
        case 'status': {
          status = eventStatus(e);
          if (status === 'running' && wait && wait.runningAt === undefined) wait.runningAt = now;
          if (status === 'error') {
            const why = e.chat?.last_error ?? e.last_error ?? lastError ?? 'no last_error';
            wait?.reject(new ChatFailure('status_error', `chat ended a turn in error: ${String(why).slice(0, 200)}`));
          }
          break;
        }
        case 'message_part':
          if (wait && wait.firstPartAt === undefined) wait.firstPartAt = now;
          onPart(e);
          break;
        case 'preview_reset':
          preview = undefined;
          break;
        case 'message':
          if ((typeof e.message === 'object' ? e.message.role : e.role) === 'assistant') {
            assistantMessages++;
            onReply(typeof e.message === 'object' ? e.message.content : undefined);
          }
          break;
        case 'error':
          lastError = e.error ?? (typeof e.message === 'string' ? e.message : undefined);
          break;
        default:
          break;
      }
      finishIfDone();
    };

    const turnDone = (turn: number, sentAt: number) =>
      new Promise<void>((resolve, reject) => {
        if (ended) return reject(ended);
        const w: TurnWait = {
          turn,
          sentAt,
          resolve: () => {
            clearTimeout(w.timer);
            wait = undefined;
            const now = performance.now();
            if (w.runningAt !== undefined) this.timeToRunning.record((w.runningAt - w.sentAt) / 1000);
            if (w.firstPartAt !== undefined) this.timeToFirstPart.record((w.firstPartAt - w.sentAt) / 1000);
            this.turnDuration.record((now - w.sentAt) / 1000);
            this.recent.push((now - w.sentAt) / 1000);
            this.progress.turnsCompleted++;
            this.progress.pushesExpected += owner.subscriptions;
            resolve();
          },
          reject: (err) => {
            clearTimeout(w.timer);
            wait = undefined;
            reject(err);
          },
          timer: setTimeout(() => w.reject(new ChatFailure('timeout', `turn ${turn} did not reach waiting within ${turnTimeoutMs} ms (status ${status ?? 'unknown'})`)), turnTimeoutMs),
        };
        wait = w;
        finishIfDone();
      });
    const onAbort = () => wait?.reject(this.stopped('stopped mid-turn'));
    this.onStop.add(onAbort);

    // A chat starts when a handshake slot is free: 5000 chats start as fast as the daemon accepts their streams.
    const releaseSlot = await this.openingSlot();
    try {
      let sentAt = performance.now();
      const chat = (await this.post(where.api, '/api/experimental/chats', owner.token, { message: this.prompt(index, 1), title: `scaletest ${index}` }, 'create')) as { id?: unknown } | undefined;
      if (typeof chat?.id !== 'string' && typeof chat?.id !== 'number') throw new ChatFailure('create', 'the created chat has no id');
      const chatId = String(chat.id);
      this.created.push({ id: chatId, token: owner.token });
      // The wait is armed before the stream opens, so the snapshot already counts for turn 1.
      let done = turnDone(1, sentAt);
      done.catch(() => undefined);
      ws = await this.handshake(where.stream, chatId, owner.token, onEvent);
      releaseSlot();
      ws.on('close', (code: number, reason: Buffer) => {
        ended = new ChatFailure('stream_ended', `stream closed (${code}${reason.length > 0 ? ` ${reason.toString('utf8').slice(0, 100)}` : ''}) before the last turn finished`);
        wait?.reject(ended);
      });
      await done;
      for (let turn = 2; turn <= turns; turn++) {
        if (signal.aborted) throw this.stopped('stopped between turns');
        sentAt = performance.now();
        done = turnDone(turn, sentAt);
        done.catch(() => undefined);
        await this.post(where.api, `/api/experimental/chats/${encodeURIComponent(chatId)}/messages`, owner.token, { content: this.prompt(index, turn) }, 'message');
        await done;
      }
      this.progress.chatsPassed++;
    } catch (err) {
      const failure = err instanceof ChatFailure ? err : signal.aborted ? this.stopped('stopped') : new ChatFailure('message', (err as Error).message);
      wait?.reject(failure);
      this.fail(failure);
    } finally {
      releaseSlot();
      this.onStop.delete(onAbort);
      if (ws) {
        ws.removeAllListeners('close');
        ws.on('error', () => undefined);
        ws.terminate();
      }
      this.progress.active--;
    }
  }

  /** Waits for one of the `maxOpeningStreams` slots; a finished handshake hands its slot to the next in line. */
  private async openingSlot(): Promise<() => void> {
    if (this.opening < maxOpeningStreams) this.opening++;
    else await new Promise<void>((resolve) => this.openingQueue.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.openingQueue.shift();
      if (next) next();
      else this.opening--;
    };
  }

  /** Opens the chat's stream; every event of every frame goes to `onEvent`, from the first frame on. */
  private handshake(replica: number, chatId: string, token: string, onEvent: (e: StreamEvent) => void): Promise<WebSocket> {
    const url = `${this.wsBase[replica]}/api/experimental/chats/${encodeURIComponent(chatId)}/stream?after_id=0`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { 'coder-session-token': token }, perMessageDeflate: false, handshakeTimeout: this.opts.turnTimeoutMs });
      ws.on('message', (data: Buffer) => {
        let events: unknown;
        try {
          events = JSON.parse(data.toString('utf8'));
        } catch {
          return;
        }
        if (Array.isArray(events)) for (const e of events) onEvent(e as StreamEvent);
        else if (events && typeof events === 'object') onEvent(events as StreamEvent);
      });
      const fail = (message: string) => {
        ws.removeAllListeners();
        ws.on('error', () => undefined);
        ws.terminate();
        reject(this.opts.signal.aborted ? this.stopped('stopped while opening the stream') : new ChatFailure('stream_open', message));
      };
      ws.once('open', () => {
        ws.removeAllListeners('error');
        ws.removeAllListeners('unexpected-response');
        // After open, a socket error is followed by close, which the runner classifies.
        ws.on('error', () => undefined);
        resolve(ws);
      });
      ws.once('unexpected-response', (_req, res) => fail(`stream open answered ${res.statusCode}`));
      ws.once('error', (err) => fail(`stream open: ${err.message}`));
    });
  }
}
