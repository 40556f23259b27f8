import type { ScaletestReport } from './report.js';

/**
 * Release gates in k6's terms: `metric.stat<limit`, e.g. `turn_duration.p95<2000`. Every metric is a figure the
 * report already has; latencies are milliseconds.
 */
const latencyStats = ['p50', 'p95', 'p99', 'max', 'mean'] as const;

type Reader = (r: ScaletestReport) => number;

export const thresholdMetrics: Record<string, Record<string, Reader>> = {
  turn_duration: Object.fromEntries(latencyStats.map((s) => [s, (r: ScaletestReport) => r.latency.turnDuration[s]])),
  time_to_first_part: Object.fromEntries(latencyStats.map((s) => [s, (r: ScaletestReport) => r.latency.timeToFirstPart[s]])),
  time_to_running: Object.fromEntries(latencyStats.map((s) => [s, (r: ScaletestReport) => r.latency.timeToRunning[s]])),
  pool_acquire_wait: { p50: (r) => r.pool.acquireWaitMs.p50, p99: (r) => r.pool.acquireWaitMs.p99, max: (r) => r.pool.acquireWaitMs.max },
  pool_waiting: { peak: (r) => r.pool.peakWaiting, mean: (r) => r.pool.meanWaiting },
  queries_per_turn: { value: (r) => r.queries.perTurn },
  turns_per_second: { value: (r) => r.turns.perSecond },
  push_delivery: { rate: (r) => (r.push.expected > 0 ? r.push.received / r.push.expected : 1), failed: (r) => r.push.failed },
  part_gaps: { count: (r) => r.parts.gaps },
  part_duplicates: { count: (r) => r.parts.duplicates },
  part_relay_latency: { p50: (r) => r.parts.relayLatencyMs.p50, p99: (r) => r.parts.relayLatencyMs.p99 },
  failed_chats: { count: (r) => r.chats.failed, rate: (r) => (r.chats.total > 0 ? r.chats.failed / r.chats.total : 0) },
};

const ops = {
  '<=': (a: number, b: number) => a <= b,
  '>=': (a: number, b: number) => a >= b,
  '==': (a: number, b: number) => a === b,
  '<': (a: number, b: number) => a < b,
  '>': (a: number, b: number) => a > b,
} as const;
type Op = keyof typeof ops;

export interface Threshold {
  /** As written: `turn_duration.p95<2000`. */
  expression: string;
  metric: string;
  stat: string;
  op: Op;
  limit: number;
}

export interface ThresholdResult extends Threshold {
  value: number;
  passed: boolean;
}

/** Parses one `--threshold`; the error lists what can be gated on. */
export function parseThreshold(expression: string): Threshold {
  const m = /^\s*([a-z_]+)(?:\.([a-z0-9]+))?\s*(<=|>=|==|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(expression);
  const known = Object.entries(thresholdMetrics)
    .map(([metric, stats]) => `${metric}.{${Object.keys(stats).join(',')}}`)
    .join(' ');
  if (!m) throw new Error(`invalid --threshold "${expression}": expected metric.stat<limit, e.g. turn_duration.p95<2000 (metrics: ${known})`);
  const [, metric, statIn, op, limit] = m;
  const stats = thresholdMetrics[metric!];
  if (!stats) throw new Error(`invalid --threshold "${expression}": unknown metric ${metric} (metrics: ${known})`);
  const stat = statIn ?? Object.keys(stats)[0]!;
  if (!stats[stat]) throw new Error(`invalid --threshold "${expression}": ${metric} has ${Object.keys(stats).join(', ')}, not ${stat}`);
  return { expression: expression.trim(), metric: metric!, stat, op: op as Op, limit: Number(limit) };
}

export function evaluateThresholds(report: ScaletestReport, thresholds: Threshold[]): ThresholdResult[] {
  return thresholds.map((t) => {
    const value = thresholdMetrics[t.metric]![t.stat]!(report);
    return { ...t, value, passed: ops[t.op](value, t.limit) };
  });
}

/** `✓ turn_duration.p95<2000  measured 812.4` */
export function formatThresholds(results: ThresholdResult[]): string[] {
  const width = Math.max(0, ...results.map((r) => r.expression.length));
  return results.map((r) => `  ${r.passed ? '✓' : '✗'} ${r.expression.padEnd(width)}  measured ${Number.isInteger(r.value) ? r.value : r.value.toFixed(3)}`);
}
