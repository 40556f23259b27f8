import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { ScaletestReport, ScaletestSummary } from '../../src/scaletest/report.js';
import { binPath, runCli } from '../helpers/cli.js';
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
  it('refuses flags that cannot work with exit 2 and one line', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--chats', '0'], /invalid --chats 0/],
      [['--url', 'http://127.0.0.1:1'], /--url needs --token/],
      [['--url', 'ftp://x', '--token', 't'], /the scheme must be http or https/],
      [['--llm-latency', 'fast'], /invalid --llm-latency "fast"/],
      [['--url', 'http://127.0.0.1:1', '--token', 't', '--no-config-cache'], /--config-cache configures the in-process daemon/],
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
    expect(page.match(/<svg /g)).toHaveLength(3);
    expect(page).toContain('Turns per second');
    expect(page).toContain('DB pool over time');
    expect(page).toContain('Latency percentiles (ms)');
  });

  it('prints the report as JSON with --json and fails a gate with exit 1', async () => {
    fake = await startFakeChatApi();
    const res = await runCli([...remote(fake.url), '--chats', '4', '--turns', '2', '--json', '--max-queries-per-turn', '1']);
    expect(res.code).toBe(1);
    const [json, summaryLine, ...rest] = res.stdout.trimEnd().split('\n');
    expect(rest).toEqual([]);
    const report = JSON.parse(json!) as ScaletestReport;
    expect(report.chats).toEqual({ total: 4, passed: 4, failed: 0 });
    expect(report.gates).toEqual([{ name: 'queries per turn', limit: 1, value: 2, passed: false }]);
    expect(summaryLine!.startsWith('SCALETEST_SUMMARY=')).toBe(true);
    expect(summaryOf(res.stdout).passed).toBe(false);
  });

  it('stops on Ctrl-C and still prints the partial report, exit 1', async () => {
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
    expect(await exited).toBe(1);
    expect(stderr).toContain('stopping; the partial report follows');
    expect(stdout).toContain('Scaletest INTERRUPTED');
    const summary = summaryOf(stdout);
    expect(summary).toMatchObject({ interrupted: true, passed: false, pass: 5, fail: 5, total: 10, failures: { interrupted: 5 } });
  });
});
