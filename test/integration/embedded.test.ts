import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

import { runCli, startServerProcess } from '../helpers/cli.js';

const postgresRunningIn = (dir: string) => {
  try {
    return execFileSync('pgrep', ['-f', dir], { encoding: 'utf8' }).trim() !== '';
  } catch {
    return false;
  }
};

describe('server on the embedded PostgreSQL', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'coder-lite-embedded-'));
  await chmod(dataDir, 0o755);
  afterAll(() => rm(dataDir, { recursive: true, force: true }));
  const flags = ['--data-dir', dataDir];

  it('creates, reuses, shares and survives a kill -9 of its data dir', async () => {
    const first = await startServerProcess(flags);
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);

    const url = await runCli(['server', 'postgres-builtin-url', '--data-dir', dataDir]);
    expect(url.code).toBe(0);
    expect(url.stdout).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/postgres\n$/);
    // Other processes come over TCP; the server's own pool uses the cluster's Unix socket (no client address).
    const probe = new pg.Client({ connectionString: url.stdout.trim() });
    await probe.connect();
    const { rows } = await probe.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'coder-lite' AND client_port = -1",
    );
    await probe.end();
    expect(rows[0]!.n).toBeGreaterThan(0);
    const user = await runCli(['users', 'create', 'dora', '--data-dir', dataDir]);
    expect(user.code).toBe(0);

    const second = await runCli(['server', '--http-address', '127.0.0.1:0', ...flags]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/in use by another coder-lite process/);

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(postgresRunningIn(join(dataDir, 'postgres'))).toBe(false);

    const reused = await startServerProcess(flags);
    expect(reused.stderr()).not.toMatch(/initialising embedded PostgreSQL/);
    const me = await fetch(`${reused.url}/api/v2/users/me`, { headers: { 'Coder-Session-Token': user.stdout.trim() } });
    expect(me.status).toBe(200);
    reused.child.kill('SIGKILL');
    await reused.exited;
    expect(postgresRunningIn(join(dataDir, 'postgres'))).toBe(true);

    const afterKill = await startServerProcess(flags);
    expect(afterKill.stderr()).toMatch(/stopping a stale embedded PostgreSQL/);
    expect((await fetch(`${afterKill.url}/healthz`)).status).toBe(200);
    afterKill.child.kill('SIGINT');
    expect(await afterKill.exited).toBe(0);
    expect(postgresRunningIn(join(dataDir, 'postgres'))).toBe(false);
  });
});
