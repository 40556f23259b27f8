import type { LatencySummary } from '../daemon/observability/quantiles.js';
import { formatThresholds, type ThresholdResult } from './thresholds.js';

/**
 * The scaletest's result, one object: what the text table, `--json`, the `SCALETEST_SUMMARY=` line and the HTML
 * report all show. Latencies are in milliseconds; figures "per turn" divide by completed turns.
 */
export interface ScaletestReport {
  startedAt: string;
  /** What ran where, to compare two runs fairly. */
  meta: RunMetadata;
  config: ReportConfig;
  /** Stopped early (Ctrl-C, --timeout): the figures cover what ran. */
  interrupted: boolean;
  elapsedSeconds: number;
  chats: { total: number; passed: number; failed: number };
  turns: { total: number; completed: number; perSecond: number };
  failures: Partial<Record<FailureKind, number>>;
  /** The first failure message of each kind, to start debugging from. */
  failureSamples: Array<{ kind: FailureKind; message: string }>;
  latency: { timeToRunning: LatencyMs; timeToFirstPart: LatencyMs; turnDuration: LatencyMs };
  pool: PoolReport;
  queries: { total: number; perTurn: number; byName: QueryRow[] };
  pubsub: { publishes: number; flushes: number; messagesPerFlush: number };
  /** Stream frames the daemon wrote (one socket write each) and their payload bytes. */
  frames: { count: number; bytes: number; perTurn: number; bytesPerTurn: number };
  push: PushReport;
  llm: { requests: number; completed: number; failed: number };
  cpu: CpuReport;
  parts: PartsReport;
  thresholds: ThresholdResult[];
  timeline: TimelinePoint[];
  /** What a --url run removed again afterwards (absent in process: the whole daemon is thrown away). */
  cleanup?: { chatsArchived: number; chatsLeft: number; pushSubscriptionsDeleted: number; skipped: boolean };
  /** Every chat passed, every threshold held, nothing was interrupted: exit code 0. */
  passed: boolean;
}

/**
 * Parts of replies as the viewers saw them, in all and by viewer pair (`<api replica>→<stream replica>`, 1-based in
 * --url order: with several replicas each chat streams from another replica than the one it talks to).
 */
export interface PartsReport {
  sent: number;
  received: number;
  gaps: number;
  duplicates: number;
  byPair: Record<string, { sent: number; received: number; gaps: number; duplicates: number }>;
  /** From a part's production on the replica running the turn to its delivery on the viewer's (relayed parts only). */
  relayLatencyMs: { count: number; p50: number; p99: number };
}

export interface RunMetadata {
  version: string;
  gitCommit?: string;
  commandLine: string;
  node: string;
  /** `SHOW server_version` of the daemon's database; `unknown (remote)` for a --url run. */
  postgres?: string;
  hostCores: number;
  /** The sampling interval of the timeline. */
  sampleIntervalMs: number;
}

export interface ReportConfig {
  target: 'in-process' | 'remote';
  /** The daemons driven (remote runs), one per replica. */
  urls?: string[];
  /** Remote: is the built-in LLM mock serving (with --llm-address), or does the daemon use its own provider? */
  llmMock: boolean;
  /** Open loop: new chats per second; closed loop (--concurrency) when absent. */
  rate?: number;
  prompts: number;
  chats: number;
  turns: number;
  concurrency: number;
  users: number;
  pushSubscriptionsPerUser: number;
  llmLatencyMs: number;
  llmTokens: number;
  postgresPoolMax?: number;
  configCache: boolean;
  subscriptionCache: boolean;
}

export const failureKinds = ['create', 'message', 'stream_open', 'stream_ended', 'status_error', 'timeout', 'dropped', 'interrupted'] as const;
export type FailureKind = (typeof failureKinds)[number];

export const failureLabels: Record<FailureKind, string> = {
  create: 'create chat',
  message: 'send message',
  stream_open: 'stream open',
  stream_ended: 'stream ended early',
  status_error: 'status error',
  timeout: 'timeout',
  dropped: 'dropped arrival (open loop)',
  interrupted: 'interrupted',
};

/** A latency summary in milliseconds. */
export type LatencyMs = LatencySummary;

export interface PoolReport {
  /** `in-process`: exact figures from the daemon's pool; `metrics`: from a remote daemon's /metrics (sampled). */
  source: 'in-process' | 'metrics';
  /** Pool size limit (in-process) or the most connections seen open (remote). */
  max: number;
  peakWaiting: number;
  /** Time-weighted mean of waiting acquisitions over the run. */
  meanWaiting: number;
  acquires: number;
  acquiresPerTurn: number;
  /** Acquisitions that found the pool exhausted and queued. */
  waitCount: number;
  acquireWaitMs: { p50: number; p99: number; max: number };
}

/** CPU time spent from the release of the runners to the end of the push drain; a figure is absent when unknown. */
export interface CpuReport {
  /**
   * `threads`: the in-process daemon's main thread and push-encryption threads (the clients and the push sink run on
   * threads of their own; V8's shared GC helper threads are counted by nobody); `process`: a remote daemon's
   * `process_cpu_seconds_total`.
   */
  daemonSource: 'threads' | 'process';
  daemonSeconds?: number;
  daemonMsPerTurn?: number;
  /** In process: the main thread's part of daemonMsPerTurn (the rest is push encryption on worker threads). */
  mainThreadMsPerTurn?: number;
  /** The postmaster, its live children and those it reaped; only when the cluster runs on this host (Linux /proc). */
  postgresSeconds?: number;
  postgresMsPerTurn?: number;
}

export interface QueryRow {
  name: string;
  count: number;
  perTurn: number;
  /** From `coderlite_db_query_duration_seconds` (includes the wait for a connection). */
  totalMs: number;
  meanMs: number;
}

export interface PushReport {
  /** One per completed turn per push subscription of the chat's owner. */
  expected: number;
  /** Decrypted by the loopback push sink. */
  received: number;
  sent: number;
  failed: number;
  cacheHits: number;
  cacheMisses: number;
  /** hits / (hits + misses); 0 when the cache was not asked. */
  cacheHitRate: number;
}

export interface TimelinePoint {
  /** Seconds since the barrier released the runners. */
  t: number;
  turnsCompleted: number;
  /** Turns completed in the interval before this point, per second (the live view shows the same figure). */
  turnsPerSecond: number;
  /** Waiting acquisitions: the interval's time-weighted mean in process, the sampled gauge from /metrics. */
  poolWaiting: number;
  poolTotal: number;
  activeChats: number;
  failedChats: number;
  /** Turn duration percentiles (ms) of the turns that finished in the interval; 0 when none did. */
  turnDurationMs: { p50: number; p95: number; p99: number };
}

/** Nearest-rank percentiles of one interval's samples (seconds in, milliseconds out). */
export function intervalPercentiles(seconds: number[]): { p50: number; p95: number; p99: number } {
  if (seconds.length === 0) return { p50: 0, p95: 0, p99: 0 };
  const sorted = [...seconds].sort((a, b) => a - b);
  const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! * 1000, 3);
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

/**
 * The reads that starved Coder's pool (DESIGN §1): each turn re-read config and subscriptions that had not changed.
 * With the caches on they should be ≈ 0 per turn; the report always lists them, even at zero.
 */
export const starvingQueries = ['getLastChatMessageByRole', 'getEnabledChatProviders', 'getChatModelConfigByID', 'getWebpushSubscriptionsByUserIDs'] as const;

export function latencyMs(s: LatencySummary): LatencyMs {
  const ms = (v: number) => round(v * 1000, 3);
  return { count: s.count, mean: ms(s.mean), p50: ms(s.p50), p95: ms(s.p95), p99: ms(s.p99), max: ms(s.max) };
}

export function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Sorted by count (then name), with the starving queries always present. `seconds`: time spent per query name. */
export function queryRows(counts: Record<string, number>, turns: number, seconds: Record<string, number> = {}): QueryRow[] {
  const all = { ...Object.fromEntries(starvingQueries.map((q) => [q, 0])), ...counts };
  return Object.entries(all)
    .map(([name, count]) => {
      const totalMs = round((seconds[name] ?? 0) * 1000, 3);
      return { name, count, perTurn: turns > 0 ? round(count / turns, 3) : 0, totalMs, meanMs: count > 0 ? round(totalMs / count, 3) : 0 };
    })
    .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
}

/** The compact figures CI greps for: `SCALETEST_SUMMARY=<this as JSON>`. */
export interface ScaletestSummary {
  passed: boolean;
  interrupted: boolean;
  pass: number;
  fail: number;
  total: number;
  turns: number;
  turnsCompleted: number;
  elapsedSeconds: number;
  turnsPerSecond: number;
  poolAcquireWaitP99Ms: number;
  poolPeakWaiting: number;
  poolAcquiresPerTurn: number;
  queriesPerTurn: number;
  daemonCpuMsPerTurn?: number;
  mainThreadCpuMsPerTurn?: number;
  postgresCpuMsPerTurn?: number;
  starvingQueriesPerTurn: Record<string, number>;
  pushesExpected: number;
  pushesReceived: number;
  failures: Partial<Record<FailureKind, number>>;
  thresholds: Array<{ expression: string; value: number; passed: boolean }>;
}

export function summarize(r: ScaletestReport): ScaletestSummary {
  const perTurn = new Map(r.queries.byName.map((q) => [q.name, q.perTurn]));
  return {
    passed: r.passed,
    interrupted: r.interrupted,
    pass: r.chats.passed,
    fail: r.chats.failed,
    total: r.chats.total,
    turns: r.turns.total,
    turnsCompleted: r.turns.completed,
    elapsedSeconds: r.elapsedSeconds,
    turnsPerSecond: r.turns.perSecond,
    poolAcquireWaitP99Ms: r.pool.acquireWaitMs.p99,
    poolPeakWaiting: r.pool.peakWaiting,
    poolAcquiresPerTurn: r.pool.acquiresPerTurn,
    queriesPerTurn: r.queries.perTurn,
    // `scaletest compare` also reads reports of older runs, made before CPU was measured.
    daemonCpuMsPerTurn: r.cpu?.daemonMsPerTurn,
    mainThreadCpuMsPerTurn: r.cpu?.mainThreadMsPerTurn,
    postgresCpuMsPerTurn: r.cpu?.postgresMsPerTurn,
    starvingQueriesPerTurn: Object.fromEntries(starvingQueries.map((q) => [q, perTurn.get(q) ?? 0])),
    pushesExpected: r.push.expected,
    pushesReceived: r.push.received,
    failures: r.failures,
    thresholds: r.thresholds.map((t) => ({ expression: t.expression, value: t.value, passed: t.passed })),
  };
}

export function summaryLine(r: ScaletestReport): string {
  return `SCALETEST_SUMMARY=${JSON.stringify(summarize(r))}`;
}

/** `1234.5` → `1,234.5`; keeps tables readable without locale surprises. */
function num(v: number, digits = 0): string {
  const [int, frac] = v.toFixed(digits).split('.');
  const grouped = int!.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return frac ? `${grouped}.${frac}` : grouped;
}

function ms(v: number): string {
  if (v === 0) return '0';
  if (v < 1) return v.toFixed(3);
  if (v < 100) return v.toFixed(1);
  return num(v);
}

function table(headers: string[], rows: string[][], alignRight: boolean[]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (alignRight[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

function cpuLine(c: CpuReport): string {
  const daemonWhat = c.daemonSource === 'threads' ? `main thread ${c.mainThreadMsPerTurn?.toFixed(3) ?? '?'} + push threads` : 'process_cpu_seconds_total';
  const daemon = c.daemonMsPerTurn !== undefined ? `${c.daemonMsPerTurn.toFixed(3)} ms/turn (${daemonWhat}, ${c.daemonSeconds} s)` : 'unknown';
  const postgres = c.postgresMsPerTurn !== undefined ? `${c.postgresMsPerTurn.toFixed(3)} ms/turn (${c.postgresSeconds} s)` : 'unknown';
  return `daemon ${daemon}, PostgreSQL ${postgres}`;
}

/** The human report on stdout. */
export function formatText(r: ScaletestReport): string {
  const out: string[] = [];
  const c = r.config;
  const verdict = r.passed ? 'PASS' : r.interrupted ? 'INTERRUPTED' : 'FAIL';
  out.push(`Scaletest ${verdict}: ${c.chats} chats × ${c.turns} turns against ${c.target === 'remote' ? (c.urls ?? []).join(' + ') : 'an in-process daemon'}`);
  const load = c.rate !== undefined ? `open loop ${c.rate} new chats/s (at most ${c.concurrency} at once)` : `closed loop, concurrency ${c.concurrency}`;
  const prompts = c.prompts > 0 ? `, ${c.prompts} prompt(s)` : '';
  if (c.target === 'remote') {
    // Only what this process controls: the daemon's caches, pool and model are whatever it was started with.
    const llm = c.llmMock ? `LLM mock here serving ${c.llmTokens} tokens after ${c.llmLatencyMs} ms` : "the daemon's own model provider";
    out.push(`  ${load}, the user of --token, push subscriptions ${c.pushSubscriptionsPerUser}, ${llm}${prompts}`);
  } else {
    out.push(
      `  ${load}, users ${c.users}, push subscriptions/user ${c.pushSubscriptionsPerUser}, LLM mock ${c.llmTokens} tokens after ${c.llmLatencyMs} ms` +
        `, config cache ${c.configCache ? 'on' : 'OFF'}, subscription cache ${c.subscriptionCache ? 'on' : 'OFF'}${prompts}`,
    );
  }
  const m = r.meta;
  out.push(`  coder-lite ${m.version}${m.gitCommit ? ` (${m.gitCommit.slice(0, 12)})` : ''}, Node ${m.node}${m.postgres ? `, PostgreSQL ${m.postgres}` : ''}, ${m.hostCores} cores`);
  out.push('');
  out.push(`Chats     ${num(r.chats.passed)} passed, ${num(r.chats.failed)} failed, ${num(r.chats.total)} total`);
  out.push(`Turns     ${num(r.turns.completed)} of ${num(r.turns.total)} in ${r.elapsedSeconds.toFixed(1)} s = ${num(r.turns.perSecond, 1)} turns/s (mean over the run)`);
  const failures = failureKinds.filter((k) => (r.failures[k] ?? 0) > 0);
  if (failures.length > 0) {
    out.push(`Failures  ${failures.map((k) => `${failureLabels[k]}: ${num(r.failures[k]!)}`).join(', ')}`);
    for (const s of r.failureSamples) out.push(`          e.g. ${failureLabels[s.kind]}: ${s.message}`);
  }
  out.push('');
  const lat = r.latency;
  out.push(
    ...table(
      ['latency (ms)', 'count', 'p50', 'p95', 'p99', 'max'],
      [
        ['time to running', lat.timeToRunning],
        ['time to first part', lat.timeToFirstPart],
        ['turn duration', lat.turnDuration],
      ].map(([name, l]) => {
        const v = l as LatencyMs;
        return [name as string, num(v.count), ms(v.p50), ms(v.p95), ms(v.p99), ms(v.max)];
      }),
      [false, true, true, true, true, true],
    ),
  );
  out.push('');
  const p = r.pool;
  out.push(`DB pool (${p.source === 'in-process' ? 'in-process' : 'from /metrics'})`);
  out.push(`  size ${p.max}, waiting peak ${p.peakWaiting}, mean ${p.meanWaiting.toFixed(2)}`);
  out.push(`  acquire wait p50 ${ms(p.acquireWaitMs.p50)} ms, p99 ${ms(p.acquireWaitMs.p99)} ms, max ${ms(p.acquireWaitMs.max)} ms`);
  out.push(`  acquires ${num(p.acquires)} (${p.acquiresPerTurn.toFixed(2)} per turn), of which queued ${num(p.waitCount)}`);
  out.push('');
  const starving = new Set<string>(starvingQueries);
  out.push(
    ...table(
      ['query', 'count', 'per turn', 'total ms', 'mean ms'],
      [
        ...r.queries.byName.map((q) => [`${q.name}${starving.has(q.name) ? ' *' : ''}`, num(q.count), q.perTurn.toFixed(3), ms(q.totalMs), ms(q.meanMs)]),
        ['total', num(r.queries.total), r.queries.perTurn.toFixed(3), ms(r.queries.byName.reduce((a, q) => a + q.totalMs, 0)), ''],
      ],
      [false, true, true, true, true],
    ),
  );
  out.push('  * a read that starved Coder\'s pool; ≈ 0 per turn with the caches on');
  out.push('');
  const perTurn = (n: number) => (r.turns.completed > 0 ? n / r.turns.completed : 0).toFixed(2);
  out.push(`Pubsub    ${num(r.pubsub.publishes)} notices (${perTurn(r.pubsub.publishes)} per turn) in ${num(r.pubsub.flushes)} flushes (${r.pubsub.messagesPerFlush.toFixed(1)} per flush)`);
  out.push(`Frames    ${num(r.frames.count)} stream frames (${r.frames.perTurn.toFixed(2)} per turn), ${num(r.frames.bytes)} bytes (${num(Math.round(r.frames.bytesPerTurn))} per turn)`);
  const push = r.push;
  out.push(
    `Push      ${num(push.received)} of ${num(push.expected)} received; sent ${num(push.sent)}, failed ${num(push.failed)}; ` +
      `subscription cache hit rate ${(push.cacheHitRate * 100).toFixed(1)}% (${num(push.cacheHits)} hits, ${num(push.cacheMisses)} misses)`,
  );
  const parts = r.parts;
  const relay = parts.relayLatencyMs.count > 0 ? `; relayed across replicas: p50 ${ms(parts.relayLatencyMs.p50)} ms, p99 ${ms(parts.relayLatencyMs.p99)} ms (${num(parts.relayLatencyMs.count)} notices)` : '';
  out.push(`Parts     ${num(parts.received)} of ${num(parts.sent)} received, ${num(parts.gaps)} missing, ${num(parts.duplicates)} duplicated${relay}`);
  const pairs = Object.entries(parts.byPair);
  if (pairs.length > 1 || (pairs[0] && pairs[0][0] !== '1→1')) {
    for (const [pair, c] of pairs.sort()) out.push(`          replicas ${pair}: ${num(c.received)} of ${num(c.sent)}, ${num(c.gaps)} missing, ${num(c.duplicates)} duplicated`);
  }
  out.push(`CPU       ${cpuLine(r.cpu)}`);
  out.push(`LLM mock  ${num(r.llm.requests)} requests, ${num(r.llm.completed)} completed, ${num(r.llm.failed)} failed`);
  if (r.cleanup) {
    out.push(
      r.cleanup.skipped
        ? `Cleanup   skipped (--no-cleanup): ${num(r.cleanup.chatsLeft)} chats kept`
        : `Cleanup   archived ${num(r.cleanup.chatsArchived)} chats (${num(r.cleanup.chatsLeft)} left), deleted ${num(r.cleanup.pushSubscriptionsDeleted)} push subscriptions`,
    );
  }
  if (r.thresholds.length > 0) out.push('', 'Thresholds', ...formatThresholds(r.thresholds));
  return `${out.join('\n')}\n`;
}
