import { afterEach, describe, expect, it } from 'vitest';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import { ChatRunner } from '../../src/scaletest/chatRunner.js';
import { summarize } from '../../src/scaletest/report.js';
import { runScaletest, type ScaletestOptions } from '../../src/scaletest/runner.js';
import { parseThreshold } from '../../src/scaletest/thresholds.js';
import { startFakeChatApi, type FakeChatApi, type Misbehaviour } from '../helpers/fakeChatApi.js';

let fake: FakeChatApi | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

function runner(url: string, over: Partial<ConstructorParameters<typeof ChatRunner>[0]> = {}) {
  return new ChatRunner({
    baseUrls: [url],
    owners: [
      { token: 't1', subscriptions: 2 },
      { token: 't2', subscriptions: 2 },
    ],
    chats: 20,
    turns: 3,
    concurrency: 20,
    turnTimeoutMs: 10_000,
    signal: new AbortController().signal,
    ...over,
  });
}

describe('ChatRunner', () => {
  it('runs every chat through every turn behind the barrier, within the concurrency bound', async () => {
    fake = await startFakeChatApi();
    const r = runner(fake.url, { concurrency: 5 });
    let release!: () => void;
    const run = r.run(new Promise<void>((resolve) => (release = resolve)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fake.requests()).toBe(0);
    release();
    await run;
    expect(r.progress).toMatchObject({ turnsCompleted: 60, chatsPassed: 20, chatsFailed: 0, active: 0, failures: {}, pushesExpected: 120 });
    expect(fake.peakStreams()).toBeLessThanOrEqual(5);
    expect(r.turnDuration.count).toBe(60);
    // Turn 1 may be past `running` by the time its stream opens; later turns see it live.
    expect(r.timeToRunning.count).toBeGreaterThanOrEqual(40);
    expect(r.timeToFirstPart.count).toBeGreaterThanOrEqual(40);
    await expect.poll(() => fake!.openStreams()).toBe(0);
  });

  it('finishes a turn on the assistant message even when the stream coalesced the statuses', async () => {
    fake = await startFakeChatApi(() => 'coalesce');
    const r = runner(fake.url, { chats: 4 });
    await r.run(Promise.resolve());
    expect(r.progress).toMatchObject({ turnsCompleted: 12, chatsPassed: 4 });
  });

  it('classifies failures: create, message, stream open, status error, stream ended, timeout', async () => {
    const modes: Misbehaviour[] = ['create-500', 'message-409', 'stream-404', 'error-turn-2', 'close-after-1', 'hang-turn-2', 'none'];
    fake = await startFakeChatApi((i) => modes[i]!);
    const r = runner(fake.url, { chats: modes.length, turnTimeoutMs: 300 });
    await r.run(Promise.resolve());
    expect(r.progress.failures).toEqual({ create: 1, message: 1, stream_open: 1, status_error: 1, stream_ended: 1, timeout: 1 });
    expect(r.progress).toMatchObject({ chatsPassed: 1, chatsFailed: 6, active: 0 });
    const samples = Object.fromEntries(r.failureSamples.map((s) => [s.kind, s.message]));
    expect(samples.create).toContain('answered 500: database on fire');
    expect(samples.message).toContain('POST /api/experimental/chats/{chat}/messages answered 409: queue full');
    expect(samples.stream_open).toContain('404');
    expect(samples.status_error).toContain('provider exploded');
    expect(samples.stream_ended).toContain('4000 bye');
    expect(samples.timeout).toContain('turn 2 did not reach waiting');
  });

  it('stops on abort: unfinished chats fail as interrupted, or as timeout when the run deadline stopped them', async () => {
    for (const [reason, kind] of [
      ['user', 'interrupted'],
      ['deadline', 'timeout'],
    ] as const) {
      fake = await startFakeChatApi(() => 'hang-turn-2');
      const stop = new AbortController();
      const r = runner(fake.url, { chats: 6, concurrency: 3, signal: stop.signal, timeoutReason: 'deadline' });
      const run = r.run(Promise.resolve());
      await expect.poll(() => r.progress.turnsCompleted).toBe(3);
      stop.abort(reason);
      await run;
      expect(r.progress.failures).toEqual({ [kind]: 6 });
      expect(r.progress.active).toBe(0);
      await fake.close();
      fake = undefined;
    }
  });
});

describe('runScaletest against a remote daemon', () => {
  const options = (url: string, over: Partial<ScaletestOptions> = {}): ScaletestOptions => ({
    target: { kind: 'remote', urls: [url], token: 't1' },
    chats: 12,
    turns: 3,
    pushSubscriptionsPerUser: 2,
    llmLatencyMs: 0,
    llmTokens: 4,
    turnTimeoutMs: 10_000,
    timeoutMs: 60_000,
    configCache: true,
    subscriptionCache: true,
    thresholds: [],
    cleanup: true,
    meta: { version: 'test', commandLine: 'test', node: process.version, hostCores: 1 },
    logger: silentLogger(),
    sampleIntervalMs: 20,
    startPushSink: async () => fake!.sink,
    ...over,
  });

  it('reports counts, queries per turn from /metrics, pushes against expectations and a timeline', async () => {
    fake = await startFakeChatApi();
    const phases: string[] = [];
    const report = await runScaletest(options(fake.url, { onProgress: (p) => phases.at(-1) !== p.phase && phases.push(p.phase) }));
    expect(phases).toEqual(['starting', 'setup', 'running', 'draining', 'done']);
    expect(report.passed).toBe(true);
    expect(report.chats).toEqual({ total: 12, passed: 12, failed: 0 });
    expect(report.turns).toMatchObject({ total: 36, completed: 36 });
    expect(report.config).toMatchObject({ target: 'remote', users: 1, concurrency: 12 });
    // Every chat API call the fake answers costs two queries: 12 creates + 24 messages over 36 turns.
    expect(report.queries.byName.find((q) => q.name === 'insertChatMessage')).toMatchObject({ name: 'insertChatMessage', count: 72, perTurn: 2 });
    expect(report.pool).toMatchObject({ source: 'metrics', max: 4, peakWaiting: 1, acquires: 72 });
    expect(report.push).toMatchObject({ expected: 72, received: 72 });
    expect(report.timeline.length).toBeGreaterThan(0);
    expect(report.timeline.at(-1)!.turnsCompleted).toBe(36);
    // Every finished turn lands in one interval's percentiles.
    expect(report.timeline.some((p) => p.turnDurationMs.p50 > 0)).toBe(true);
    const s = summarize(report);
    expect(s.pass + s.fail).toBe(s.total);
  });

  it('cleans up after itself: the chats it made are archived and its push subscriptions deleted', async () => {
    fake = await startFakeChatApi();
    const report = await runScaletest(options(fake.url, { chats: 3, turns: 1 }));
    expect(report.cleanup).toEqual({ chatsArchived: 3, chatsLeft: 0, pushSubscriptionsDeleted: 2, skipped: false });
    expect(fake.archived().sort()).toEqual(['c0', 'c1', 'c2']);
    expect(fake.subscriptions()).toBe(0);
  });

  it('fails the thresholds past their bounds', async () => {
    fake = await startFakeChatApi();
    const report = await runScaletest(options(fake.url, { chats: 2, thresholds: [parseThreshold('queries_per_turn<=1.5'), parseThreshold('pool_acquire_wait.p99<=100')] }));
    expect(report.chats.failed).toBe(0);
    expect(report.thresholds.map((t) => [t.expression, t.passed])).toEqual([
      ['queries_per_turn<=1.5', false],
      ['pool_acquire_wait.p99<=100', true],
    ]);
    expect(report.passed).toBe(false);
  });

  it('stops on abort with a partial report that still adds up', async () => {
    fake = await startFakeChatApi((i) => (i >= 6 ? 'hang-turn-2' : 'none'));
    const stop = new AbortController();
    const pending = runScaletest(
      options(fake.url, {
        signal: stop.signal,
        onProgress: (p) => {
          if (p.phase === 'running' && p.chatsPassed === 6) stop.abort();
        },
      }),
    );
    const report = await pending;
    expect(report.interrupted).toBe(true);
    expect(report.passed).toBe(false);
    expect(report.chats).toEqual({ total: 12, passed: 6, failed: 6 });
    expect(report.failures).toEqual({ interrupted: 6 });
  });

  it('explains a daemon that refuses the token', async () => {
    fake = await startFakeChatApi();
    await expect(runScaletest(options('http://127.0.0.1:9'))).rejects.toThrow(/cannot reach the daemon at http:\/\/127.0.0.1:9/);
  });
});
