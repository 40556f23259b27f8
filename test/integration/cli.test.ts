import { describe, expect, it } from 'vitest';

import { runCli, startServerProcess } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/db.js';

const oneLine = (s: string) => s.trim().split('\n').length === 1;

describe('coder-lite CLI', () => {
  it('lists the commands in --help', async () => {
    const { code, stdout } = await runCli(['--help']);
    expect(code).toBe(0);
    for (const topic of ['server', 'users']) expect(stdout).toContain(topic);
  });

  it('answers a bad flag with exit 2 and one line', async () => {
    const res = await runCli(['server', '--no-such-flag']);
    expect(res.code).toBe(2);
    expect(oneLine(res.stderr)).toBe(true);
    expect(res.stderr).toMatch(/no-such-flag/);
  });

  it('answers --http-address nonsense with exit 2 and one line', async () => {
    const res = await runCli(['server', '--http-address', 'nonsense', '--postgres-url', 'postgres://u@127.0.0.1:1/d']);
    expect(res.code).toBe(2);
    expect(oneLine(res.stderr)).toBe(true);
    expect(res.stderr).toMatch(/invalid --http-address "nonsense"/);
  });

  it('answers an unreachable --postgres-url with exit 1 and one line naming it', async () => {
    const res = await runCli(['server', '--http-address', '127.0.0.1:0', '--postgres-url', 'postgres://u:secret@127.0.0.1:1/db']);
    expect(res.code).toBe(1);
    expect(oneLine(res.stderr.split('\n').filter((l) => !l.startsWith('{')).join('\n'))).toBe(true);
    expect(res.stderr).toMatch(/Error: cannot prepare the database at 127\.0\.0\.1:1\/db: .*ECONNREFUSED/);
    expect(res.stderr).not.toContain('secret');
    expect(res.stderr).not.toMatch(/^\s+at /m);
  });

  it('shows a stack trace only with --log-level debug', async () => {
    const res = await runCli(['users', 'create', 'x', '--postgres-url', 'postgres://u@127.0.0.1:1/d', '--log-level', 'debug']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^\s+at /m);
  });

  it('users create prints a token that works; without a database it says how to fix it', async () => {
    const { url } = await createTestDatabase();
    const res = await runCli(['users', 'create', 'bob', '--email', 'bob@example.com', '--json', '--postgres-url', url]);
    expect(res.code).toBe(0);
    const created = JSON.parse(res.stdout) as { id: string; username: string; token: string };
    expect(created).toMatchObject({ username: 'bob' });
    expect(created.token).toMatch(/^[a-z0-9]{10}-/);

    const dup = await runCli(['users', 'create', 'bob', '--postgres-url', url]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/already exists/);

    const none = await runCli(['users', 'create', 'carol', '--data-dir', '/tmp/coder-lite-no-such-dir'], { env: { CODER_LITE_POSTGRES_URL: '' } });
    expect(none.code).toBe(1);
    expect(oneLine(none.stderr)).toBe(true);
    expect(none.stderr).toMatch(/pass --postgres-url/);
  });

  it('two servers started at the same moment on one --postgres-url both come up', async () => {
    const { url } = await createTestDatabase();
    const servers = await Promise.all([0, 1].map(() => startServerProcess(['--postgres-url', url])));
    for (const s of servers) expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    for (const s of servers) s.child.kill('SIGTERM');
    expect(await Promise.all(servers.map((s) => s.exited))).toEqual([0, 0]);
  });
});
