import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { ScaletestReport, ScaletestSummary } from '../../src/scaletest/report.js';
import { binPath, runCli } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/db.js';
import { startFakeChatApi, type FakeChatApi } from '../helpers/fakeChatApi.js';

function summaryOf(stdout: string): ScaletestSummary {
  const last = stdout.trimEnd().split('\n').at(-1)!;
  expect(last.startsWith('SCALETEST_SUMMARY=')).toBe(true);
  return JSON.parse(last.slice('SCALETEST_SUMMARY='.length)) as ScaletestSummary;
}

let fake: FakeChatApi | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

const remote = (url: string) => ['scaletest', 'run', '--url', url, '--token', 't1', '--push-subscriptions-per-user', '0', '--llm-latency', '0'];

describe('scaletest run (CLI)', () => {
  it('runs in process with its load on threads of its own (clients, push sink, LLM mock) and push encryption on one', async () => {
    const { url } = await createTestDatabase();
    const res = await runCli(['scaletest', 'run', '--postgres-url', url, '--chats', '10', '--turns', '2', '--llm-latency', '0', '--push-encryption-threads', '1', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout.split('\n')[0]!) as ScaletestReport;
    expect(report.chats).toEqual({ total: 10, passed: 10, failed: 0 });
    expect(report.llm).toEqual({ requests: 20, completed: 20, failed: 0 });
    expect(report.push).toMatchObject({ expected: 20, received: 20, failed: 0 });
    expect(report.meta.postgres).toMatch(/^\d+/);
    expect(report.cpu.daemonSource).toBe('threads');
    expect(report.cpu.daemonMsPerTurn).toBeGreaterThan(0);
    expect(summaryOf(res.stdout).daemonCpuMsPerTurn).toBe(report.cpu.daemonMsPerTurn);
  });

  it('refuses flags that cannot work with exit 2 and one line', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--chats', '0'], /invalid --chats "0": expected a whole number from 1/],
      [['--url', 'http://127.0.0.1:1'], /must be provided when using --url: --token/],
      [['--url', 'ftp://x', '--token', 't'], /the scheme must be http or https/],
      [['--llm-latency', 'fast'], /invalid --llm-latency "fast"/],
      [['--url', 'http://127.0.0.1:1', '--token', 't', '--no-config-cache'], /--config-cache=false cannot also be provided when using --url/],
      [['--threshold', 'turn_time.p95<1'], /unknown metric turn_time/],
      [['--rate', '0'], /invalid --rate "0": expected a number above 0/],
      [['--max-pool-wait-p99', 'soon'], /invalid --max-pool-wait-p99/],
      [['--postgres-url', 'mysql://x'], /scheme must be postgres/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(['scaletest', 'run', ...args])));
    results.forEach((res, i) => {
      const [args, message] = cases[i]!;
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toMatch(message);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
    });
  });

  it('drives a daemon by --url: text report, SUMMARY last, HTML report with charts, progress lines on stderr, exit 0', async () => {
    fake = await startFakeChatApi();
    const dir = await mkdtemp(join(tmpdir(), 'scaletest-cli-'));
    const html = join(dir, 'report.html');
    const res = await runCli([...remote(fake.url), '--chats', '30', '--turns', '3', '--report', html]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('Scaletest PASS: 30 chats × 3 turns against http://127.0.0.1');
    expect(res.stdout).toMatch(/insertChatMessage\s+180\s+2\.000/);
    const summary = summaryOf(res.stdout);
    expect(summary).toMatchObject({ passed: true, pass: 30, fail: 0, total: 30, turns: 90, turnsCompleted: 90, queriesPerTurn: 2 });
    expect(summary.pass + summary.fail).toBe(summary.total);
    expect(res.stderr).toContain('scaletest: creating users and push subscriptions');
    expect(res.stderr).toMatch(/scaletest: [\d.]+s turns 90\/90/);
    expect(res.stderr).toContain(`wrote the HTML report to ${html}`);
    const page = await readFile(html, 'utf8');
    expect(page.match(/<svg /g)).toHaveLength(4);
    expect(page).toContain('Turns per second');
    expect(page).toContain('Turn duration over time');
    expect(page).toContain('DB pool over time');
    expect(page).toContain('Latency percentiles (ms)');
  });

  it('prints the report as JSON with --json and fails a threshold with exit 99', async () => {
    fake = await startFakeChatApi();
    const res = await runCli([...remote(fake.url), '--chats', '4', '--turns', '2', '--json', '--max-queries-per-turn', '1']);
    expect(res.code).toBe(99);
    const [json, summaryLine, ...rest] = res.stdout.trimEnd().split('\n');
    expect(rest).toEqual([]);
    const report = JSON.parse(json!) as ScaletestReport;
    expect(report.chats).toEqual({ total: 4, passed: 4, failed: 0 });
    expect(report.thresholds).toEqual([{ expression: 'queries_per_turn<=1', metric: 'queries_per_turn', stat: 'value', op: '<=', limit: 1, value: 2, passed: false }]);
    expect(report.meta).toMatchObject({ node: process.version, sampleIntervalMs: 250 });
    expect(report.meta.commandLine).toContain('--token [redacted]');
    expect(summaryLine!.startsWith('SCALETEST_SUMMARY=')).toBe(true);
    expect(summaryOf(res.stdout).passed).toBe(false);
  });

  it('prints each threshold as a ✓/✗ line with the measured value; all held → 0, one failed → 99, failed chats → 1', async () => {
    fake = await startFakeChatApi();
    const ok = await runCli([...remote(fake.url), '--chats', '3', '--turns', '1', '--threshold', 'queries_per_turn<=2', '--threshold', 'failed_chats.count==0']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('✓ queries_per_turn<=2    measured 2');
    expect(ok.stdout).toContain('✓ failed_chats.count==0  measured 0');
    const failed = await runCli([...remote(fake.url), '--chats', '3', '--turns', '1', '--threshold', 'queries_per_turn<2']);
    expect(failed.code).toBe(99);
    expect(failed.stdout).toContain('✗ queries_per_turn<2  measured 2');
    await fake.close();
    fake = await startFakeChatApi((i) => (i === 0 ? 'create-500' : 'none'));
    const broken = await runCli([...remote(fake.url), '--chats', '3', '--turns', '1', '--threshold', 'queries_per_turn<2']);
    expect(broken.code).toBe(1);
  });

  it('a --url run archives the chats it made; --no-cleanup keeps them', async () => {
    fake = await startFakeChatApi();
    const base = ['scaletest', 'run', '--url', fake.url, '--token', 't1', '--llm-latency', '0', '--chats', '5', '--turns', '2'];
    const res = await runCli([...base, '--push-subscriptions-per-user', '0', '--prompt', 'hello', '--prompt', 'and again']);
    expect(res.code, res.stderr).toBe(0);
    expect(fake.archived().sort()).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
    expect(res.stdout).toContain('Cleanup   archived 5 chats (0 left), deleted 0 push subscriptions');
    // What the run really used: the daemon's own model, the user of --token, the prompts given.
    expect(res.stdout).toContain("the user of --token, push subscriptions 0, the daemon's own model provider, 2 prompt(s)");
    expect(fake.prompts().filter((p) => p === 'hello')).toHaveLength(5);
    expect(fake.prompts().filter((p) => p === 'and again')).toHaveLength(5);
    await fake.close();

    fake = await startFakeChatApi();
    const kept = await runCli([...base.map((a) => (a.startsWith('http://') ? fake!.url : a)), '--push-subscriptions-per-user', '0', '--no-cleanup']);
    expect(kept.code, kept.stderr).toBe(0);
    expect(fake.archived()).toEqual([]);
    expect(kept.stdout).toContain('Cleanup   skipped (--no-cleanup): 5 chats kept');
  });

  it('runs an open loop with --rate', async () => {
    fake = await startFakeChatApi();
    const res = await runCli([...remote(fake.url), '--chats', '6', '--turns', '1', '--rate', '50', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout.split('\n')[0]!) as ScaletestReport;
    expect(report.config).toMatchObject({ rate: 50 });
    expect(report.chats).toEqual({ total: 6, passed: 6, failed: 0 });
  });

  it('stops on Ctrl-C and still prints the partial report, exit 130', async () => {
    fake = await startFakeChatApi((i) => (i % 2 === 0 ? 'hang-turn-2' : 'none'));
    const child = spawn(process.execPath, [binPath, ...remote(fake.url), '--chats', '10', '--turns', '2'], {
      env: { ...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: 'true', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    // Half the chats hang in turn 2: once the others are through, only an interrupt ends the run.
    await expect.poll(() => fake!.openStreams(), { timeout: 20_000 }).toBe(5);
    await expect.poll(() => fake!.requests(), { timeout: 20_000 }).toBeGreaterThanOrEqual(20);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain('stopping; the partial report follows');
    expect(stdout).toContain('Scaletest INTERRUPTED');
    const summary = summaryOf(stdout);
    expect(summary).toMatchObject({ interrupted: true, passed: false, pass: 5, fail: 5, total: 10, failures: { interrupted: 5 } });
  });
});
