import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import { startDaemon, type Daemon, type DaemonConfig } from '../daemon/index.js';
import { Lifecycle } from '../daemon/lifecycle.js';
import type { Logger } from '../daemon/observability/logger.js';
import type { NatsTarget } from '../daemon/pubsub/nats.js';
import { createUserWithToken } from '../daemon/users/service.js';
import { ChatRunner, type ChatOwner, type ChatRunnerOptions, type RunProgress } from './chatRunner.js';
import type { ChatRunnerLike } from './chatRunnerProtocol.js';
import { ThreadChatRunner } from './threadChatRunner.js';
import { localPostmasterOf } from './cpu.js';
import { startLlmMock, type LlmMock, type LlmMockOptions } from './llmMock.js';
import { combinedProbe, inProcessProbe, remoteProbe, type DaemonFigures, type DaemonProbe, type PoolSample } from './probe.js';
import { bucketDelta, histogramMaxBound, histogramQuantile } from './promText.js';
import {
  intervalPercentiles,
  latencyMs,
  queryRows,
  round,
  type FailureKind,
  type CpuReport,
  type PartsReport,
  type PoolReport,
  type ReportConfig,
  type RunMetadata,
  type ScaletestReport,
  type TimelinePoint,
} from './report.js';
import { evaluateThresholds, type Threshold } from './thresholds.js';

/** k6 samples its time series at this grain; a second hides the bursts a pool stall makes. */
const defaultSampleIntervalMs = 250;

/** The loopback push service the daemon delivers to; it decrypts and counts every notification. */
export interface PushSink {
  /** A fresh subscription (new keys) whose endpoint is on this sink. */
  newSubscription(): { endpoint: string; auth_key: string; p256dh_key: string };
  /** Notifications received and decrypted so far. */
  received(): number;
  close(): Promise<void>;
}

export type Target =
  | {
      kind: 'in-process';
      /** Without it, a throwaway embedded PostgreSQL runs in a temporary directory. */
      postgresUrl?: string;
      postgresPoolMax: number;
      /** The daemon's pubsub on NATS; PostgreSQL LISTEN/NOTIFY when absent. */
      nats?: NatsTarget;
    }
  | {
      kind: 'remote';
      /** One per replica (all on one PostgreSQL): chats spread over them and stream from another one. */
      urls: string[];
      token: string;
      /** Where to run the LLM mock for a daemon started with `--llm-base-url http://<this>/v1`; none when absent. */
      llmAddress?: { host: string; port: number };
    };

export interface ScaletestOptions {
  target: Target;
  chats: number;
  turns: number;
  /** Chats active at once. Default: all. */
  concurrency?: number;
  /** Chat owners. Default chats/10 (at least 1). A remote run has the one user of --token. */
  users?: number;
  pushSubscriptionsPerUser: number;
  llmLatencyMs: number;
  llmTokens: number;
  turnTimeoutMs: number;
  /** The whole run; chats unfinished by then fail as `timeout`. */
  timeoutMs: number;
  configCache: boolean;
  subscriptionCache: boolean;
  thresholds: Threshold[];
  /** Open loop: new chats per second (see ChatRunnerOptions.rate). */
  rate?: number;
  /** The messages of turns 1, 2, … (cycled). */
  prompts?: string[];
  /** --url runs: archive the chats and delete the push subscriptions made (--no-cleanup keeps them). */
  cleanup: boolean;
  /** What the caller knows of itself; the sampling interval is added. */
  meta: Omit<RunMetadata, 'sampleIntervalMs'>;
  logger: Logger;
  /** Aborting stops the run; the report covers what ran and says it was interrupted. */
  signal?: AbortSignal;
  /** How often progress and the timeline are sampled. Default 250 ms. */
  sampleIntervalMs?: number;
  onProgress?: (p: LiveProgress) => void;
  /** Starts the in-process daemon's LLM mock (the CLI runs it on a thread of its own). Default: on this thread. */
  startLlmMock?: (opts: LlmMockOptions) => Promise<LlmMock>;
  /** Starts the push sink; required when pushSubscriptionsPerUser > 0. */
  startPushSink?: () => Promise<PushSink>;
  /** Run the chat clients on a thread of their own (needs the built JavaScript: the CLI sets it). */
  clientThread?: boolean;
  /** In-process only: worker threads for push encryption (0: on the daemon's main thread). */
  pushEncryptionThreads?: number;
  /** In-process only: lets a caller add to the daemon's config (tests). */
  daemonOverrides?: Partial<DaemonConfig>;
}

export type Phase = 'starting' | 'setup' | 'running' | 'draining' | 'done';

export interface LiveProgress {
  phase: Phase;
  /** Seconds since the runners were released (0 before). */
  elapsedSeconds: number;
  turnsCompleted: number;
  turnsTotal: number;
  /** Over the last sample interval. */
  turnsPerSecond: number;
  chatsTotal: number;
  chatsPassed: number;
  chatsFailed: number;
  active: number;
  poolWaiting: number;
  poolTotal: number;
  failures: Partial<Record<FailureKind, number>>;
}

/** The setup could not be done: nothing ran. */
export class ScaletestSetupError extends Error {}

/** Runs `fn` over `items` with at most `limit` at once. */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) await fn(items[i]!, i);
    }),
  );
}

interface Harness {
  baseUrls: string[];
  probe: DaemonProbe;
  llm?: LlmMock;
  sink?: PushSink;
  owners: ChatOwner[];
  /** Push subscriptions made, for the cleanup of a --url run. */
  subscriptions: Array<{ token: string; endpoint: string }>;
  /** `SHOW server_version`, or why it is not known. */
  postgresVersion: string;
  close(): Promise<void>;
}

async function subscribeOwners(
  baseUrl: string,
  tokens: string[],
  perUser: number,
  sink: PushSink | undefined,
): Promise<{ owners: ChatOwner[]; subscriptions: Harness['subscriptions'] }> {
  const made: Harness['subscriptions'] = [];
  if (perUser > 0 && !sink) throw new ScaletestSetupError('push subscriptions asked for, but no push sink to deliver to');
  const jobs = tokens.flatMap((token) => Array.from({ length: perUser }, () => token));
  await forEachLimited(jobs, 8, async (token) => {
    const subscription = sink!.newSubscription();
    const res = await fetch(new URL('/api/v2/users/me/webpush/subscription', baseUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'coder-session-token': token },
      body: JSON.stringify(subscription),
    });
    if (res.ok) made.push({ token, endpoint: subscription.endpoint });
    if (!res.ok) {
      const body = await res.text();
      throw new ScaletestSetupError(
        `the daemon refused a push subscription to the loopback sink (${res.status} ${body.slice(0, 200)}); ` +
          'a remote daemon needs --webpush-allow-insecure-endpoints, or run with --push-subscriptions-per-user 0',
      );
    }
  });
  return { owners: tokens.map((token) => ({ token, subscriptions: perUser })), subscriptions: made };
}

async function startHarness(opts: ScaletestOptions, users: number): Promise<Harness> {
  const life = new Lifecycle((err, part) => opts.logger.warn({ err, part }, 'scaletest cleanup step failed'));
  const close = () => life.stop();
  return life.build(async () => {
    const sink = opts.pushSubscriptionsPerUser > 0 && opts.startPushSink ? await life.start('push sink', opts.startPushSink, (s) => s.close()) : undefined;
    const { target } = opts;

    if (target.kind === 'remote') {
      let llm: LlmMock | undefined;
      if (target.llmAddress) {
        const address = target.llmAddress;
        llm = await life.start('LLM mock', () => startLlmMock({ ...address, latencyMs: opts.llmLatencyMs, tokens: opts.llmTokens }), (l) => l.close());
      }
      for (const url of target.urls) {
        const me = await fetch(new URL('/api/v2/users/me', url), { headers: { 'coder-session-token': target.token } }).catch((err: unknown) => {
          throw new ScaletestSetupError(`cannot reach the daemon at ${url}: ${(err as Error).message}`, { cause: err });
        });
        if (!me.ok) throw new ScaletestSetupError(`the daemon at ${url} refused --token (${me.status})`);
      }
      const { owners, subscriptions } = await subscribeOwners(target.urls[0]!, [target.token], opts.pushSubscriptionsPerUser, sink);
      const probe = target.urls.length === 1 ? remoteProbe(target.urls[0]!) : combinedProbe(target.urls.map((u) => remoteProbe(u)));
      // Without database access of its own, a --url run cannot ask PostgreSQL anything.
      return { baseUrls: target.urls, probe, llm, sink, owners, subscriptions, postgresVersion: 'unknown (remote)', close };
    }

    const startMock = opts.startLlmMock ?? startLlmMock;
    const llm = await life.start('LLM mock', () => startMock({ latencyMs: opts.llmLatencyMs, tokens: opts.llmTokens }), (l) => l.close());
    let dataDir = '/nonexistent-unused';
    if (!target.postgresUrl) {
      // A throwaway cluster: durability is worth nothing here, and the disk's flush rate is not what is measured.
      dataDir = await mkdtemp(join(tmpdir(), 'coder-lite-scaletest-'));
      // As root, PostgreSQL runs as the postgres user, which must be able to enter the directory.
      await chmod(dataDir, 0o755);
      const dir = dataDir;
      life.defer('scratch data dir', () => rm(dir, { recursive: true, force: true }));
    }
    const daemon: Daemon = await life.start('daemon', () => startDaemon({
      logger: opts.logger,
      httpAddress: '127.0.0.1:0',
      postgresUrl: target.postgresUrl,
      dataDir,
      postgresPoolMax: target.postgresPoolMax,
      ...(target.nats ? { pubsub: 'nats' as const, nats: { target: target.nats } } : {}),
      embeddedSettings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
      chat: {
        provider: 'openai-compat',
        llmBaseUrl: llm.baseUrl,
        llmModel: 'scaletest-mock',
        // Without the cache every turn re-reads its provider and model config, as Coder's chat daemon does.
        configCacheDisabled: !opts.configCache,
      },
      webpush: {
        // The sink listens on loopback plain HTTP.
        allowInsecureEndpoints: true,
        subscriptionCacheDisabled: !opts.subscriptionCache,
        // Coder's push path re-reads the chat, its last message and the model config after each turn.
        uncachedTurnPush: !opts.configCache,
        encryptionThreads: opts.pushEncryptionThreads,
      },
      ...opts.daemonOverrides,
    }), (d) => d.close());
    const runId = randomBytes(3).toString('hex');
    const tokens: string[] = new Array<string>(users);
    await forEachLimited(tokens, 4, async (_t, i) => {
      tokens[i] = (await createUserWithToken(daemon.db, `scaletest-${runId}-${i}`, undefined)).token;
    });
    const { owners, subscriptions } = await subscribeOwners(daemon.url, tokens, opts.pushSubscriptionsPerUser, sink);
    const db = await daemon.databaseInfo();
    // The daemon is this process's main thread (the clients, the sink and the mock have threads of their own under the
    // CLI) plus its push threads.
    const cpu = { threadIds: () => [process.pid, ...(daemon.webpush?.threadIds() ?? [])], postmasterPid: await localPostmasterOf(db.backendPid) };
    return { baseUrls: [daemon.url], probe: inProcessProbe(daemon, cpu), llm, sink, owners, subscriptions, postgresVersion: db.serverVersion, close };
  });
}

/** One run's state as its phases pass it on. */
interface RunContext {
  opts: ScaletestOptions;
  harness: Harness;
  runner: ChatRunnerLike;
  progress: LiveProgress;
  emit(): void;
  interrupted(): boolean;
}

/** Runs the whole scaletest and returns its report; the caller prints it. Phases: set up, run, drain, report, clean up. */
export async function runScaletest(opts: ScaletestOptions): Promise<ScaletestReport> {
  const startedAt = new Date().toISOString();
  const remote = opts.target.kind === 'remote';
  const users = remote ? 1 : Math.max(1, opts.users ?? Math.floor(opts.chats / 10));
  const concurrency = Math.min(opts.concurrency ?? opts.chats, opts.chats);
  const progress: LiveProgress = {
    phase: 'starting',
    elapsedSeconds: 0,
    turnsCompleted: 0,
    turnsTotal: opts.chats * opts.turns,
    turnsPerSecond: 0,
    chatsTotal: opts.chats,
    chatsPassed: 0,
    chatsFailed: 0,
    active: 0,
    poolWaiting: 0,
    poolTotal: 0,
    failures: {},
  };
  const emit = () => opts.onProgress?.({ ...progress, failures: { ...progress.failures } });
  emit();
  if (remote && opts.users !== undefined && opts.users !== 1) opts.logger.warn('--users does not apply with --url: every chat belongs to the user of --token');

  // One controller stops the runners, for Ctrl-C (interrupted) and for --timeout (the rest fail as timeout).
  const stop = new AbortController();
  let interrupted = false;
  const onAbort = () => {
    interrupted = true;
    stop.abort(new Error('interrupted'));
  };
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  progress.phase = 'setup';
  emit();
  const harness = await startHarness(opts, users);
  try {
    const runnerOptions: ChatRunnerOptions = {
      baseUrls: harness.baseUrls,
      owners: harness.owners,
      chats: opts.chats,
      turns: opts.turns,
      concurrency,
      turnTimeoutMs: opts.turnTimeoutMs,
      signal: stop.signal,
      timeoutReason: 'deadline',
      rate: opts.rate,
      prompts: opts.prompts,
      ...(harness.llm ? { partsPerReply: opts.llmTokens } : {}),
    };
    const runner: ChatRunnerLike = opts.clientThread ? new ThreadChatRunner(runnerOptions) : new ChatRunner(runnerOptions);
    const ctx: RunContext = { opts, harness, runner, progress, emit, interrupted: () => interrupted };
    const pushBaseline = harness.sink?.received() ?? 0;
    const before = await harness.probe.figures();
    const sampled = await runPhase(ctx, stop);
    const expectedPushes = await drainPhase(ctx, pushBaseline);
    const after = await harness.probe.figures();
    await sampled.stop();
    progress.phase = 'done';
    emit();
    const report = buildReport(ctx, { startedAt, users, concurrency, before, after, pushBaseline, expectedPushes, ...sampled });
    if (remote) report.cleanup = await cleanUpRemote(ctx);
    return report;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await harness.close();
  }
}

interface Sampled {
  elapsedSeconds: number;
  timeline: TimelinePoint[];
  poolSamples: PoolSample[];
  stop(): Promise<void>;
}

/** Releases the runners together and samples progress and the pool every interval until they are all done. */
async function runPhase(ctx: RunContext, stop: AbortController): Promise<Sampled> {
  const { opts, harness, runner, progress, emit } = ctx;
  const timeline: TimelinePoint[] = [];
  const poolSamples: PoolSample[] = [];
  let t0 = performance.now();
  let last: { t: number; turns: number; waitingSeconds?: number } = { t: 0, turns: 0 };
  let sampling: Promise<void> | undefined;
  const takeSample = async () => {
    const s = await harness.probe.sample().catch(() => undefined);
    const t = (performance.now() - t0) / 1000;
    const p: RunProgress = runner.progress;
    const dt = t - last.t;
    // The live view and the timeline show this one figure: turns completed in the last interval, per second.
    const rate = dt > 0 ? (p.turnsCompleted - last.turns) / dt : 0;
    // In process the chart shows each interval's time-weighted mean; a remote gauge can only be sampled.
    const waiting =
      s?.waitingSeconds !== undefined && last.waitingSeconds !== undefined && dt > 0 ? (s.waitingSeconds - last.waitingSeconds) / dt : (s?.waiting ?? 0);
    last = { t, turns: p.turnsCompleted, waitingSeconds: s?.waitingSeconds };
    if (s) poolSamples.push(s);
    Object.assign(progress, {
      elapsedSeconds: t,
      turnsCompleted: p.turnsCompleted,
      turnsPerSecond: rate,
      chatsPassed: p.chatsPassed,
      chatsFailed: p.chatsFailed,
      active: p.active,
      poolWaiting: s?.waiting ?? progress.poolWaiting,
      poolTotal: s?.total ?? progress.poolTotal,
      failures: p.failures,
    });
    timeline.push({
      t: round(t, 3),
      turnsCompleted: p.turnsCompleted,
      turnsPerSecond: round(rate, 1),
      poolWaiting: round(waiting, 2),
      poolTotal: s?.total ?? 0,
      activeChats: p.active,
      failedChats: p.chatsFailed,
      turnDurationMs: intervalPercentiles(runner.takeRecentTurnDurations()),
    });
    emit();
  };
  // A slow scrape must not pile samples up.
  const ticker = setInterval(() => {
    sampling ??= takeSample().finally(() => (sampling = undefined));
  }, opts.sampleIntervalMs ?? defaultSampleIntervalMs);

  let releaseBarrier!: () => void;
  const barrier = new Promise<void>((resolve) => (releaseBarrier = resolve));
  const running = runner.run(barrier);
  const deadline = setTimeout(() => stop.abort('deadline'), opts.timeoutMs);
  progress.phase = 'running';
  t0 = performance.now();
  releaseBarrier();
  await takeSample();
  try {
    await running;
  } finally {
    clearTimeout(deadline);
  }
  const elapsedSeconds = (performance.now() - t0) / 1000;
  await sampling;
  await takeSample();
  return {
    elapsedSeconds,
    timeline,
    poolSamples,
    stop: async () => {
      clearInterval(ticker);
      await sampling;
    },
  };
}

/** Pushes run off the turn path: give the last ones a moment to land before counting. */
async function drainPhase(ctx: RunContext, pushBaseline: number): Promise<number> {
  ctx.progress.phase = 'draining';
  ctx.emit();
  const expected = ctx.runner.progress.pushesExpected;
  const sink = ctx.harness.sink;
  if (sink) {
    const drainUntil = performance.now() + (ctx.interrupted() ? 2000 : 15_000);
    while (sink.received() - pushBaseline < expected && performance.now() < drainUntil) await sleep(50);
  }
  return expected;
}

interface Measured {
  startedAt: string;
  users: number;
  concurrency: number;
  before: DaemonFigures;
  after: DaemonFigures;
  pushBaseline: number;
  expectedPushes: number;
  elapsedSeconds: number;
  timeline: TimelinePoint[];
  poolSamples: PoolSample[];
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, n] of Object.entries(after)) {
    const d = n - (before[name] ?? 0);
    if (d > 0) out[name] = d;
  }
  return out;
}

function buildReport(ctx: RunContext, m: Measured): ScaletestReport {
  const { opts, harness, runner } = ctx;
  const { before, after, elapsedSeconds } = m;
  const config: ReportConfig = {
    target: opts.target.kind,
    ...(opts.target.kind === 'remote' ? { urls: opts.target.urls } : { postgresPoolMax: opts.target.postgresPoolMax }),
    llmMock: harness.llm !== undefined,
    ...(opts.rate !== undefined ? { rate: opts.rate } : {}),
    prompts: opts.prompts?.length ?? 0,
    chats: opts.chats,
    turns: opts.turns,
    concurrency: m.concurrency,
    users: m.users,
    pushSubscriptionsPerUser: opts.pushSubscriptionsPerUser,
    llmLatencyMs: opts.llmLatencyMs,
    llmTokens: opts.llmTokens,
    configCache: opts.configCache,
    subscriptionCache: opts.subscriptionCache,
  };
  const turns = runner.progress.turnsCompleted;
  const queries = delta(after.queries, before.queries);
  const totalQueries = Object.values(queries).reduce((a, b) => a + b, 0);
  const pushSent = sumMatching(after.pushByResult, before.pushByResult, (r) => /^(ok|success|sent|delivered|2\d\d)$/.test(r));
  const pushAll = sumMatching(after.pushByResult, before.pushByResult, () => true);
  const hits = after.cacheHits - before.cacheHits;
  const misses = after.cacheMisses - before.cacheMisses;
  const flushes = after.pubsubFlushes - before.pubsubFlushes;
  const llm = harness.llm?.stats() ?? { requests: 0, completed: 0, failed: 0 };
  const report: ScaletestReport = {
    startedAt: m.startedAt,
    meta: { ...opts.meta, postgres: harness.postgresVersion, sampleIntervalMs: opts.sampleIntervalMs ?? defaultSampleIntervalMs },
    config,
    interrupted: ctx.interrupted(),
    elapsedSeconds: round(elapsedSeconds, 3),
    chats: { total: opts.chats, passed: runner.progress.chatsPassed, failed: runner.progress.chatsFailed },
    turns: { total: opts.chats * opts.turns, completed: turns, perSecond: round(elapsedSeconds > 0 ? turns / elapsedSeconds : 0, 1) },
    failures: runner.progress.failures,
    failureSamples: runner.failureSamples,
    latency: {
      timeToRunning: latencyMs(runner.timeToRunning.summary()),
      timeToFirstPart: latencyMs(runner.timeToFirstPart.summary()),
      turnDuration: latencyMs(runner.turnDuration.summary()),
    },
    pool: poolReport(harness.probe.source, before, after, m.poolSamples, elapsedSeconds, turns),
    queries: { total: totalQueries, perTurn: turns > 0 ? round(totalQueries / turns, 3) : 0, byName: queryRows(queries, turns, delta(after.querySeconds, before.querySeconds)) },
    pubsub: {
      publishes: after.pubsubPublishes - before.pubsubPublishes,
      flushes,
      messagesPerFlush: flushes > 0 ? round((after.pubsubFlushedMessages - before.pubsubFlushedMessages) / flushes, 2) : 0,
    },
    frames: framesReport(after.streamFrames - before.streamFrames, after.streamFrameBytes - before.streamFrameBytes, turns),
    push: {
      expected: m.expectedPushes,
      received: harness.sink ? harness.sink.received() - m.pushBaseline : 0,
      sent: pushSent,
      failed: pushAll - pushSent,
      cacheHits: hits,
      cacheMisses: misses,
      cacheHitRate: hits + misses > 0 ? round(hits / (hits + misses), 4) : 0,
    },
    llm: { requests: llm.requests, completed: llm.completed, failed: llm.failed },
    cpu: cpuReport(harness.probe.source, before, after, turns),
    parts: partsReport(runner.parts, bucketDelta(after.partRelayBuckets, before.partRelayBuckets)),
    thresholds: [],
    timeline: m.timeline,
    passed: false,
  };
  report.thresholds = evaluateThresholds(report, opts.thresholds);
  report.passed = !report.interrupted && report.chats.failed === 0 && report.chats.passed === report.chats.total && report.thresholds.every((t) => t.passed);
  return report;
}

/**
 * A --url run leaves the daemon as it found it: the chats it made are archived (DELETE, the API's only removal) and
 * its push subscriptions deleted. The user is --token's own, so no user was made.
 */
async function cleanUpRemote(ctx: RunContext): Promise<NonNullable<ScaletestReport['cleanup']>> {
  const { opts, harness, runner } = ctx;
  if (opts.target.kind !== 'remote') throw new Error('cleanUpRemote: not a remote run');
  const created = runner.created;
  if (!opts.cleanup) return { chatsArchived: 0, chatsLeft: created.length, pushSubscriptionsDeleted: 0, skipped: true };
  const baseUrl = opts.target.urls[0]!;
  let archived = 0;
  await forEachLimited(created, 8, async ({ id, token }) => {
    const res = await fetch(new URL(`/api/experimental/chats/${encodeURIComponent(id)}`, baseUrl), { method: 'DELETE', headers: { 'coder-session-token': token } }).catch(
      (err: unknown) => opts.logger.warn({ err, chat: id }, 'scaletest cleanup: cannot archive a chat'),
    );
    if (res?.ok) archived++;
  });
  let unsubscribed = 0;
  await forEachLimited(harness.subscriptions, 8, async ({ token, endpoint }) => {
    const res = await fetch(new URL('/api/v2/users/me/webpush/subscription', baseUrl), {
      method: 'DELETE',
      headers: { 'content-type': 'application/json', 'coder-session-token': token },
      body: JSON.stringify({ endpoint }),
    }).catch((err: unknown) => opts.logger.warn({ err }, 'scaletest cleanup: cannot delete a push subscription'));
    if (res?.ok) unsubscribed++;
  });
  return { chatsArchived: archived, chatsLeft: created.length - archived, pushSubscriptionsDeleted: unsubscribed, skipped: false };
}

function framesReport(count: number, bytes: number, turns: number): ScaletestReport['frames'] {
  return { count, bytes, perTurn: turns > 0 ? round(count / turns, 3) : 0, bytesPerTurn: turns > 0 ? round(bytes / turns, 1) : 0 };
}

function cpuReport(source: DaemonProbe['source'], before: DaemonFigures, after: DaemonFigures, turns: number): CpuReport {
  const spent = (a?: number, b?: number) => (a !== undefined && b !== undefined ? a - b : undefined);
  const daemon = spent(after.daemonCpuSeconds, before.daemonCpuSeconds);
  const main = spent(after.mainThreadCpuSeconds, before.mainThreadCpuSeconds);
  const postgres = spent(after.postgresCpuSeconds, before.postgresCpuSeconds);
  const perTurn = (seconds: number) => (turns > 0 ? round((seconds * 1000) / turns, 3) : 0);
  return {
    daemonSource: source === 'in-process' ? 'threads' : 'process',
    ...(daemon !== undefined ? { daemonSeconds: round(daemon, 2), daemonMsPerTurn: perTurn(daemon) } : {}),
    ...(main !== undefined ? { mainThreadMsPerTurn: perTurn(main) } : {}),
    ...(postgres !== undefined ? { postgresSeconds: round(postgres, 2), postgresMsPerTurn: perTurn(postgres) } : {}),
  };
}

function partsReport(byPair: ChatRunnerLike['parts'], relay: Array<[number, number]>): PartsReport {
  const total = { sent: 0, received: 0, gaps: 0, duplicates: 0 };
  for (const c of Object.values(byPair)) {
    total.sent += c.sent;
    total.received += c.received;
    total.gaps += c.gaps;
    total.duplicates += c.duplicates;
  }
  const count = relay.at(-1)?.[1] ?? 0;
  const ms = (q: number) => (count > 0 ? round(histogramQuantile(q, relay) * 1000, 1) : 0);
  return { ...total, byPair, relayLatencyMs: { count, p50: ms(0.5), p99: ms(0.99) } };
}

function sumMatching(after: Record<string, number>, before: Record<string, number>, match: (result: string) => boolean): number {
  let n = 0;
  for (const [k, v] of Object.entries(after)) if (match(k)) n += v - (before[k] ?? 0);
  return n;
}

function poolReport(
  source: DaemonProbe['source'],
  before: DaemonFigures,
  after: DaemonFigures,
  samples: PoolSample[],
  elapsedSeconds: number,
  turns: number,
): PoolReport {
  const acquires = after.acquires - before.acquires;
  const common = { source, acquires, acquiresPerTurn: turns > 0 ? round(acquires / turns, 2) : 0, waitCount: after.waitCount - before.waitCount };
  if (after.pool && before.pool) {
    const w = after.pool.acquireWait;
    return {
      ...common,
      max: after.pool.poolMax,
      peakWaiting: after.pool.peakWaiting,
      meanWaiting: round(elapsedSeconds > 0 ? (after.pool.waitingSeconds - before.pool.waitingSeconds) / elapsedSeconds : 0, 3),
      acquireWaitMs: { p50: round(w.p50 * 1000, 3), p99: round(w.p99 * 1000, 3), max: round(w.max * 1000, 3) },
    };
  }
  const buckets = bucketDelta(after.acquireWaitBuckets ?? [], before.acquireWaitBuckets ?? []);
  return {
    ...common,
    max: Math.max(0, ...samples.map((s) => s.total)),
    peakWaiting: Math.max(0, ...samples.map((s) => s.waiting)),
    meanWaiting: round(samples.length > 0 ? samples.reduce((a, s) => a + s.waiting, 0) / samples.length : 0, 3),
    acquireWaitMs: {
      p50: round(histogramQuantile(0.5, buckets) * 1000, 3),
      p99: round(histogramQuantile(0.99, buckets) * 1000, 3),
      max: round(histogramMaxBound(buckets) * 1000, 3),
    },
  };
}
