import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, inject, it, onTestFinished } from 'vitest';

import { binPath, runCli, startServerProcess } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/db.js';

const { url } = await createTestDatabase();
const natsUrl = inject('natsUrl');

/** Runs the built CLI with `input` on stdin. */
function runWithStdin(args: string[], input: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [binPath, ...args], {
    env: { ...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: 'true', NO_COLOR: '1' },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

/** Starts `pubsub tail` (stdout is a pipe, so NDJSON) and resolves once it listens; on the test database by default. */
function startTail(args: string[], target: string[] = ['--postgres-url', url]) {
  const child = spawn(process.execPath, [binPath, 'pubsub', 'tail', ...target, ...args], {
    env: { ...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: 'true', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(timer));
  const listening = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('Listening on')) resolve();
    });
    void exited.then((code) => reject(new Error(`tail exited (${code}) before listening: ${stderr}`)));
  });
  return { child, listening, exited, stdout: () => stdout, stderr: () => stderr };
}

describe('coder-lite pubsub', () => {
  it('round-trips publish and tail --max 1 --json', async () => {
    const tail = startTail(['roundtrip', '--max', '1', '--json']);
    await tail.listening;
    const pub = await runCli(['pubsub', 'publish', 'roundtrip', '{"hello":"wörld"}', '--postgres-url', url]);
    expect(pub).toMatchObject({ code: 0, stdout: '' });
    expect(await tail.exited).toBe(0);
    const lines = tail.stdout().trim().split('\n');
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ channel: 'roundtrip', size: 18, payload: '{"hello":"wörld"}' });
    expect(new Date(line.time as string).getTime()).not.toBeNaN();
  });

  it('writes NDJSON when piped, honours --filter, and reads the message from stdin with -', async () => {
    const tail = startTail(['a', 'b', '--max', '2', '--filter', '^keep']);
    await tail.listening;
    for (const [ch, msg] of [['a', 'drop me'], ['b', 'keep 1'], ['a', 'skip'], ['a', 'keep 2']]) {
      expect((await runWithStdin(['pubsub', 'publish', ch!, '-', '--postgres-url', url], `${msg}\n`)).code).toBe(0);
    }
    expect(await tail.exited).toBe(0);
    const lines = tail
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { channel: string; payload: string });
    expect(lines.map((l) => [l.channel, l.payload])).toEqual([
      ['b', 'keep 1'],
      ['a', 'keep 2'],
    ]);
  });

  it('round-trips publish and tail over NATS', async () => {
    const nats = ['--pubsub', 'nats', '--nats-url', natsUrl];
    const tail = startTail(['nats_roundtrip', '--max', '1', '--json'], nats);
    await tail.listening;
    const pub = await runCli(['pubsub', 'publish', 'nats_roundtrip', '{"over":"nats"}', ...nats]);
    expect(pub).toMatchObject({ code: 0, stdout: '' });
    expect(await tail.exited).toBe(0);
    expect(JSON.parse(tail.stdout())).toMatchObject({ channel: 'nats_roundtrip', payload: '{"over":"nats"}' });
    const usage = await runCli(['pubsub', 'publish', 'c', 'x', '--pubsub', 'nats'], { env: { CODER_LITE_NATS_URL: '' } });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--pubsub nats needs --nats-url/);
  });

  it('follows a restarted server: --json prints a dropped line, then the next message, and no stack trace', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'coder-lite-tail-restart-'));
    // As root the embedded PostgreSQL runs as the postgres user, which must be able to enter the directory.
    await chmod(dataDir, 0o755);
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const server = ['--data-dir', dataDir, '--no-webpush'];
    let running = await startServerProcess(server);
    onTestFinished(() => void running.child.kill('SIGKILL'));
    const tail = startTail(['restart', '--json'], ['--data-dir', dataDir]);
    await tail.listening;
    const publish = (msg: string) => runCli(['pubsub', 'publish', 'restart', msg, '--data-dir', dataDir]);
    const lines = () =>
      tail
        .stdout()
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { payload?: string; dropped?: boolean });
    expect((await publish('one')).code).toBe(0);
    await expect.poll(() => lines().length, { timeout: 10_000 }).toBe(1);

    // The embedded cluster comes back on another port: only the run file says which.
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    running = await startServerProcess(server);
    await expect.poll(() => lines().some((l) => l.dropped), { timeout: 30_000 }).toBe(true);
    expect((await publish('two')).code).toBe(0);
    await expect.poll(() => lines().length, { timeout: 10_000 }).toBe(3);
    expect(lines()).toEqual([expect.objectContaining({ payload: 'one' }), expect.objectContaining({ channel: 'restart', dropped: true }), expect.objectContaining({ payload: 'two' })]);
    expect(tail.stderr()).toMatch(/connection lost .*reconnecting…\n(.|\n)*reconnected/);
    expect(tail.stderr()).not.toMatch(/^\s+at /m);
    tail.child.kill('SIGTERM');
    expect(await tail.exited).toBe(0);
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
  }, 90_000);

  it('refuses bad input with exit 2 and one line', async () => {
    const long = await runCli(['pubsub', 'publish', 'c'.repeat(64), 'x', '--postgres-url', url]);
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/^Error: pubsub: channel must be 1 to 63 bytes \(got 64\)/);
    const big = await runWithStdin(['pubsub', 'publish', 'c', '-', '--postgres-url', url], 'x'.repeat(8000));
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(/shorter than 8000 bytes/);
    const regex = await runCli(['pubsub', 'tail', 'c', '--filter', '(', '--postgres-url', url]);
    expect(regex.code).toBe(2);
    expect(regex.stderr).toMatch(/Invalid regular expression/);
    const none = await runCli(['pubsub', 'tail', '--postgres-url', url]);
    expect(none.code).toBe(2);
  });

  it('says clearly when there is no database to tail', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'coder-lite-tail-'));
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const res = await runCli(['pubsub', 'tail', 'c', '--data-dir', dataDir], { env: { CODER_LITE_POSTGRES_URL: '' } });
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/no database to use: pass --postgres-url/);
  });
});
