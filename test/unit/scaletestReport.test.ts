import { describe, expect, it } from 'vitest';

import { LatencyRecorder } from '../../src/daemon/observability/quantiles.js';
import { renderHtml } from '../../src/scaletest/html.js';
import {
  formatText,
  intervalPercentiles,
  latencyMs,
  queryRows,
  starvingQueries,
  summarize,
  summaryLine,
  type ScaletestReport,
} from '../../src/scaletest/report.js';
import { evaluateThresholds, parseThreshold } from '../../src/scaletest/thresholds.js';

function sampleReport(overrides: Partial<ScaletestReport> = {}): ScaletestReport {
  const lat = { count: 300, mean: 12, p50: 10, p95: 20, p99: 30, max: 45.5 };
  return {
    startedAt: '2024-01-01T00:00:00.000Z',
    meta: { version: '0.1.0', gitCommit: 'abcdef1234567890', commandLine: 'coder-lite scaletest run', node: 'v20.20.2', postgres: '18.4', hostCores: 2, sampleIntervalMs: 250 },
    config: {
      target: 'in-process',
      llmMock: true,
      prompts: 0,
      chats: 100,
      turns: 3,
      concurrency: 100,
      users: 10,
      pushSubscriptionsPerUser: 1,
      llmLatencyMs: 5,
      llmTokens: 8,
      postgresPoolMax: 10,
      configCache: true,
      subscriptionCache: true,
    },
    interrupted: false,
    elapsedSeconds: 4.25,
    chats: { total: 100, passed: 98, failed: 2 },
    turns: { total: 300, completed: 296, perSecond: 69.6 },
    failures: { timeout: 1, status_error: 1 },
    failureSamples: [{ kind: 'status_error', message: 'chat <b>x</b> ended in error: boom' }],
    latency: { timeToRunning: lat, timeToFirstPart: lat, turnDuration: lat },
    pool: { source: 'in-process', max: 10, peakWaiting: 7, meanWaiting: 0.42, acquires: 1500, acquiresPerTurn: 5.07, waitCount: 40, acquireWaitMs: { p50: 0.01, p99: 3.2, max: 9 } },
    queries: { total: 1480, perTurn: 5, byName: queryRows({ insertChatMessage: 600, claimPendingChat: 296, getWebpushSubscriptionsByUserIDs: 10 }, 296) },
    pubsub: { publishes: 1200, flushes: 300, messagesPerFlush: 4 },
    frames: { count: 900, bytes: 180_000, perTurn: 3, bytesPerTurn: 600 },
    push: { expected: 296, received: 296, sent: 296, failed: 0, cacheHits: 286, cacheMisses: 10, cacheHitRate: 0.966 },
    llm: { requests: 296, completed: 296, failed: 0 },
    cpu: { daemonSource: 'threads', daemonSeconds: 1.48, daemonMsPerTurn: 5, mainThreadMsPerTurn: 4.5, postgresSeconds: 0.74, postgresMsPerTurn: 2.5 },
    parts: { sent: 2368, received: 2368, gaps: 0, duplicates: 0, byPair: { '1→1': { sent: 2368, received: 2368, gaps: 0, duplicates: 0 } }, relayLatencyMs: { count: 0, p50: 0, p99: 0 } },
    thresholds: [],
    timeline: [
      { t: 0, turnsCompleted: 0, turnsPerSecond: 0, poolWaiting: 0, poolTotal: 1, activeChats: 100, failedChats: 0, turnDurationMs: { p50: 0, p95: 0, p99: 0 } },
      { t: 1, turnsCompleted: 80, turnsPerSecond: 80, poolWaiting: 6, poolTotal: 10, activeChats: 100, failedChats: 0, turnDurationMs: { p50: 40, p95: 90, p99: 120 } },
      { t: 2, turnsCompleted: 150, turnsPerSecond: 70, poolWaiting: 3, poolTotal: 10, activeChats: 60, failedChats: 1, turnDurationMs: { p50: 45, p95: 95, p99: 130 } },
    ],
    passed: false,
    ...overrides,
  };
}

describe('queryRows', () => {
  it('sorts by count, divides by turns, and always lists the starving queries', () => {
    const rows = queryRows({ a: 10, b: 30, getChatModelConfigByID: 5 }, 10);
    expect(rows.map((r) => r.name)).toEqual(['b', 'a', 'getChatModelConfigByID', 'getEnabledChatProviders', 'getLastChatMessageByRole', 'getWebpushSubscriptionsByUserIDs']);
    expect(rows[0]).toEqual({ name: 'b', count: 30, perTurn: 3, totalMs: 0, meanMs: 0 });
    expect(rows.find((r) => r.name === 'getEnabledChatProviders')).toEqual({ name: 'getEnabledChatProviders', count: 0, perTurn: 0, totalMs: 0, meanMs: 0 });
    expect(queryRows({ a: 4 }, 2, { a: 0.01 })[0]).toMatchObject({ name: 'a', totalMs: 10, meanMs: 2.5 });
    expect(queryRows({ a: 1 }, 0)[0]!.perTurn).toBe(0);
  });
});

describe('intervalPercentiles', () => {
  it("gives each timeline interval its own turn-duration percentiles, in ms", () => {
    expect(intervalPercentiles([])).toEqual({ p50: 0, p95: 0, p99: 0 });
    const seconds = Array.from({ length: 100 }, (_, i) => (i + 1) / 1000);
    expect(intervalPercentiles(seconds)).toEqual({ p50: 50, p95: 95, p99: 99 });
  });
});

describe('thresholds', () => {
  it('parses k6-style expressions and measures each against the report', () => {
    const r = sampleReport();
    const results = evaluateThresholds(r, ['queries_per_turn<=5', 'pool_acquire_wait.p99<3', 'turn_duration.p95<2000', 'push_delivery.rate>=0.99', 'failed_chats.count==0'].map(parseThreshold));
    expect(results.map((t) => [t.expression, t.value, t.passed])).toEqual([
      ['queries_per_turn<=5', 5, true],
      ['pool_acquire_wait.p99<3', 3.2, false],
      ['turn_duration.p95<2000', 20, true],
      ['push_delivery.rate>=0.99', 1, true],
      ['failed_chats.count==0', 2, false],
    ]);
  });

  it('refuses unknown metrics and stats, naming what exists', () => {
    expect(() => parseThreshold('turn_time.p95<1')).toThrow(/unknown metric turn_time .*turn_duration\.\{p50,p95/);
    expect(() => parseThreshold('turn_duration.p42<1')).toThrow(/turn_duration has p50, p95, p99, max, mean, not p42/);
    expect(() => parseThreshold('turn_duration.p95 soon')).toThrow(/expected metric\.stat<limit/);
  });
});

describe('latencyMs', () => {
  it('converts a recorder summary from seconds to milliseconds', () => {
    const rec = new LatencyRecorder();
    for (let i = 1; i <= 100; i++) rec.record(i / 1000);
    const l = latencyMs(rec.summary());
    expect(l.count).toBe(100);
    expect(l.max).toBe(100);
    expect(l.p50).toBeGreaterThan(48);
    expect(l.p50).toBeLessThan(52);
  });
});

describe('summary line', () => {
  it('is one line of compact JSON with pass + fail = total and the starving queries per turn', () => {
    const line = summaryLine(sampleReport());
    expect(line).not.toContain('\n');
    expect(line.startsWith('SCALETEST_SUMMARY={')).toBe(true);
    const s = JSON.parse(line.slice('SCALETEST_SUMMARY='.length)) as ReturnType<typeof summarize>;
    expect(s.pass + s.fail).toBe(s.total);
    expect(s).toMatchObject({ pass: 98, fail: 2, total: 100, turnsCompleted: 296, poolAcquireWaitP99Ms: 3.2, passed: false, failures: { timeout: 1 } });
    expect(Object.keys(s.starvingQueriesPerTurn).sort()).toEqual([...starvingQueries].sort());
    expect(s.starvingQueriesPerTurn.getWebpushSubscriptionsByUserIDs).toBe(0.034);
  });
});

describe('formatText', () => {
  it('shows verdict, counts, rate, latency table, pool, sorted queries with starving ones marked, push and gates', () => {
    const text = formatText(sampleReport({ thresholds: evaluateThresholds(sampleReport(), [parseThreshold('queries_per_turn<=4'), parseThreshold('turn_duration.p95<2000')]) }));
    expect(text).toContain('Scaletest FAIL: 100 chats × 3 turns against an in-process daemon');
    expect(text).toContain('Chats     98 passed, 2 failed, 100 total');
    expect(text).toContain('296 of 300 in 4.3 s = 69.6 turns/s');
    expect(text).toContain('Failures  status error: 1, timeout: 1');
    expect(text).toMatch(/turn duration\s+300\s+10\.0\s+20\.0\s+30\.0\s+45\.5/);
    expect(text).toContain('acquire wait p50 0.010 ms, p99 3.2 ms, max 9.0 ms');
    const lines = text.split('\n');
    const first = lines.findIndex((l) => l.startsWith('insertChatMessage'));
    expect(lines[first + 1]).toMatch(/^claimPendingChat\s+296\s+1\.000\s+0\s+0$/);
    expect(text).toMatch(/getWebpushSubscriptionsByUserIDs \*\s+10\s+0\.034/);
    expect(text).toMatch(/getLastChatMessageByRole \*\s+0\s+0\.000/);
    expect(text).toMatch(/total\s+1,480\s+5\.000/);
    expect(text).toContain('1,200 notices (4.05 per turn) in 300 flushes (4.0 per flush)');
    expect(text).toContain('900 stream frames (3.00 per turn), 180,000 bytes (600 per turn)');
    expect(text).toContain('296 of 296 received');
    expect(text).toContain('hit rate 96.6%');
    expect(text).toContain('  ✗ queries_per_turn<=4     measured 5');
    expect(text).toContain('  ✓ turn_duration.p95<2000  measured 20');
    expect(text).toContain('turns/s (mean over the run)');
    expect(text).toContain('coder-lite 0.1.0 (abcdef123456), Node v20.20.2, PostgreSQL 18.4, 2 cores');
    expect(text).toContain('CPU       daemon 5.000 ms/turn (main thread 4.500 + push threads, 1.48 s), PostgreSQL 2.500 ms/turn (0.74 s)');
  });

  it('says when the caches were off and when the run was interrupted', () => {
    const r = sampleReport({ interrupted: true });
    r.config.configCache = false;
    const text = formatText(r);
    expect(text).toContain('Scaletest INTERRUPTED');
    expect(text).toContain('config cache OFF, subscription cache on');
  });
});

describe('renderHtml', () => {
  const html = renderHtml(sampleReport());

  it('is a self-contained page: inline charts, no scripts, nothing fetched from the network', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|@import|src=/i);
    // The only URL is the SVG namespace, which is an identifier, not a fetch.
    expect(html.match(/https?:\/\/[^"\s<]+/g)?.every((u) => u === 'http://www.w3.org/2000/svg')).toBe(true);
    expect(html.match(/<svg /g)).toHaveLength(4);
    for (const label of ['DB pool over time', 'Turns per second', 'Turn duration over time', 'Latency percentiles (ms)']) expect(html).toContain(label);
  });

  it('plots the timeline and the percentiles', () => {
    // Three timeline points → three vertices per polyline (turns/s, pool); the two intervals in which turns finished
    // → two per percentile over time; 3 groups × 4 percentiles → 12 bars.
    const polylines = [...html.matchAll(/<polyline points="([^"]+)"/g)].map((m) => m[1]!.split(' ').length);
    expect(polylines).toEqual([3, 3, 3, 3, 2, 2, 2]);
    expect(html.match(/<rect x="[^"]+" y="[^"]+" width="[^"]+" height="[^"]+" fill="#[0-9a-f]{6}"><title>/g)).toHaveLength(12);
  });

  it('shows the run metadata and the CPU per turn, or says it is unknown', () => {
    expect(html).toContain('PostgreSQL 18.4 · 2 cores');
    expect(html).toContain('<b>5 ms</b><span>daemon CPU per turn</span>');
    const remote = renderHtml(sampleReport({ cpu: { daemonSource: 'process', daemonSeconds: 3, daemonMsPerTurn: 10 } }));
    expect(remote).toContain('<b>unknown</b><span>PostgreSQL CPU per turn</span>');
    expect(remote).toContain('process_cpu_seconds_total');
  });

  it('escapes what came from the run and carries the summary line', () => {
    expect(html).toContain('chat &lt;b&gt;x&lt;/b&gt; ended in error');
    expect(html).not.toContain('<b>x</b>');
    expect(html).toContain('SCALETEST_SUMMARY={&quot;passed&quot;:false');
    expect(html).toContain('class="starving"');
  });
});
