import { afterAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import { namedQuery } from '../../src/daemon/postgres/pool.js';
import { startPushSink } from '../../src/scaletest/pushSink.js';
import { starvingQueries, summarize, type ScaletestReport } from '../../src/scaletest/report.js';
import { runScaletest, type ScaletestOptions } from '../../src/scaletest/runner.js';
import { runCli, startServerProcess } from '../helpers/cli.js';
import { createTestUser } from '../helpers/daemon.js';
import { createTestDatabase, createTestPool } from '../helpers/db.js';
import { freeFixedPort } from '../helpers/net.js';

async function inProcess(over: Partial<ScaletestOptions> = {}): Promise<ScaletestReport> {
  return runScaletest({
    target: { kind: 'in-process', postgresUrl: (await createTestDatabase()).url, postgresPoolMax: 10 },
    chats: 50,
    turns: 3,
    pushSubscriptionsPerUser: 1,
    llmLatencyMs: 5,
    llmTokens: 4,
    turnTimeoutMs: 30_000,
    timeoutMs: 120_000,
    configCache: true,
    subscriptionCache: true,
    thresholds: [],
    cleanup: true,
    meta: { version: 'test', commandLine: 'test', node: process.version, hostCores: 1 },
    logger: silentLogger(),
    sampleIntervalMs: 100,
    startPushSink,
    ...over,
  });
}

const perTurn = (r: ScaletestReport, name: string) => r.queries.byName.find((q) => q.name === name)?.perTurn ?? 0;

describe('scaletest against a real daemon', () => {
  it('runs 50 chats × 3 turns in-process: all pass, exact turns, the starving queries ≈ 0, a push per turn', async () => {
    const report = await inProcess();
    expect(report.chats).toEqual({ total: 50, passed: 50, failed: 0 });
    expect(report.turns).toMatchObject({ total: 150, completed: 150 });
    for (const q of starvingQueries) expect(perTurn(report, q), q).toBeLessThan(0.1);
    expect(report.push).toMatchObject({ expected: 150, received: 150 });
    expect(report.pool.acquires).toBeGreaterThan(0);
    // Every turn reached its viewer through at least one frame: its reply and the status it ended with.
    expect(report.frames.perTurn).toBeGreaterThanOrEqual(1);
    expect(report.frames.bytes).toBeGreaterThan(report.frames.count);
    // The daemon's threads and the local cluster both did work for these turns; the version is PostgreSQL's own.
    expect(report.meta.postgres).toMatch(/^\d+(\.\d+)?/);
    expect(report.cpu.daemonSource).toBe('threads');
    expect(report.cpu.daemonMsPerTurn).toBeGreaterThan(0);
    expect(report.cpu.postgresMsPerTurn).toBeGreaterThan(0);
    const s = summarize(report);
    expect(s.pass + s.fail).toBe(s.total);
    expect(s.passed).toBe(true);
  });

  it('shows the starving queries per turn once the caches are off', async () => {
    const report = await inProcess({ configCache: false, subscriptionCache: false });
    expect(report.chats.failed).toBe(0);
    // Pushes that miss in the same moment share one subscription read: more than none, up to one per turn.
    for (const q of starvingQueries) {
      if (q === 'getWebpushSubscriptionsByUserIDs') expect(perTurn(report, q), q).toBeGreaterThan(0);
      else expect(perTurn(report, q), q).toBeGreaterThanOrEqual(1);
    }
    expect(report.push.received).toBe(150);
  });

  it('drives a separately started server by --url and --token, with pool figures from its /metrics', async () => {
    const { url, db } = await createTestPool();
    const sink = await startPushSink();
    afterAll(() => sink.close());
    // The server's model is the scaletest's LLM mock, started by the scaletest on --llm-address.
    const llmPort = await freeFixedPort();
    const server = await startServerProcess([
      '--postgres-url', url, '--chat-provider', 'openai-compat', '--llm-base-url', `http://127.0.0.1:${llmPort}/v1`, '--webpush-allow-insecure-endpoints',
    ]);
    try {
      const { user, token } = await createTestUser({ db });
      const res = await runCli(['scaletest', 'run', '--url', server.url, '--token', token, '--llm-address', `127.0.0.1:${llmPort}`, '--chats', '10', '--turns', '2', '--json']);
      expect(res.code, res.stderr).toBe(0);
      const report = JSON.parse(res.stdout.split('\n')[0]!) as ScaletestReport;
      expect(report.chats).toEqual({ total: 10, passed: 10, failed: 0 });
      expect(report.pool.source).toBe('metrics');
      expect(report.pool.acquires).toBeGreaterThan(0);
      expect(perTurn(report, 'getLastChatMessageByRole')).toBe(0);
      expect(report.push.received).toBe(20);
      // No database access of its own: the daemon's process CPU from /metrics, PostgreSQL unknown.
      expect(report.meta.postgres).toBe('unknown (remote)');
      expect(report.cpu.daemonSource).toBe('process');
      expect(report.cpu.daemonMsPerTurn).toBeGreaterThan(0);
      expect(report.cpu.postgresMsPerTurn).toBeUndefined();
      // The run left the daemon as it found it: its chats archived, its push subscription gone (the user is --token's).
      expect(report.cleanup).toMatchObject({ chatsArchived: 10, chatsLeft: 0, pushSubscriptionsDeleted: 1, skipped: false });
      const chats = await db.query(namedQuery('testChatsByOwner', 'SELECT archived FROM chats WHERE owner_id = $1'), [user.id]);
      expect(chats.rows.map((r) => r.archived)).toEqual(Array.from({ length: 10 }, () => true));
      const subs = await db.query(namedQuery('testSubscriptionsByUser', 'SELECT count(*)::int AS n FROM webpush_subscriptions WHERE user_id = $1'), [user.id]);
      expect(subs.rows[0]!.n).toBe(0);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('spreads chats over two replicas by repeated --url, each streaming from the other: every part arrives once', async () => {
    const { url, db } = await createTestPool();
    const llmPort = await freeFixedPort();
    const args = ['--postgres-url', url, '--chat-provider', 'openai-compat', '--llm-base-url', `http://127.0.0.1:${llmPort}/v1`];
    const servers = await Promise.all([startServerProcess(args), startServerProcess(args)]);
    try {
      const { token } = await createTestUser({ db });
      const res = await runCli([
        'scaletest', 'run', '--url', servers[0].url, '--url', servers[1].url, '--token', token, '--llm-address', `127.0.0.1:${llmPort}`,
        '--llm-latency', '50', '--chats', '40', '--turns', '3', '--push-subscriptions-per-user', '0', '--threshold', 'part_gaps.count==0', '--json',
      ]);
      expect(res.code, res.stderr).toBe(0);
      const report = JSON.parse(res.stdout.split('\n')[0]!) as ScaletestReport;
      expect(report.chats).toEqual({ total: 40, passed: 40, failed: 0 });
      expect(report.config.urls).toEqual(servers.map((s) => s.url));
      // 8 tokens a reply, each a part, each once, across replicas both ways. A first turn may end before its chat's
      // stream opens (the chat must exist first): then its parts had no viewer; every later turn's count.
      expect(report.parts).toMatchObject({ gaps: 0, duplicates: 0 });
      expect(report.parts.sent).toBeGreaterThanOrEqual(40 * 2 * 8);
      expect(report.parts.received).toBe(report.parts.sent);
      expect(Object.keys(report.parts.byPair).sort()).toEqual(['1→2', '2→1']);
      expect(report.parts.relayLatencyMs.count).toBeGreaterThan(0);
      expect(report.thresholds).toMatchObject([{ metric: 'part_gaps', passed: true }]);
    } finally {
      for (const s of servers) s.child.kill('SIGTERM');
      await Promise.all(servers.map((s) => s.exited));
    }
  });
});
