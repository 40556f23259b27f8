import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

  it('has oclif\'s help, version and autocomplete, and -h', async () => {
    const [help, short, version, completion] = await Promise.all([
      runCli(['help', 'server']),
      runCli(['server', '-h']),
      runCli(['version', '--json']),
      runCli(['autocomplete', 'bash']),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--write-config');
    expect(short.stdout).toBe(help.stdout);
    expect(JSON.parse(version.stdout)).toMatchObject({ cliVersion: expect.stringMatching(/^coder-lite\/\d/) });
    expect(completion.code).toBe(0);
    expect(completion.stdout).toMatch(/bash/i);
  });

  it('under --json, errors are JSON on stdout: {"error":{"message","code"}} with the exit code', async () => {
    const [usage, failure] = await Promise.all([
      runCli(['users', 'create', 'x', '--json', '--postgres-url', 'notaurl']),
      runCli(['users', 'create', 'x', '--json', '--postgres-url', 'postgres://u@127.0.0.1:1/d']),
    ]);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stdout)).toEqual({ error: { message: 'invalid --postgres-url: expected postgres://user:password@host:port/database', code: 2 } });
    expect(usage.stderr).toBe('');
    expect(failure.code).toBe(1);
    expect(JSON.parse(failure.stdout)).toMatchObject({ error: { message: expect.stringMatching(/ECONNREFUSED/), code: 1 } });
  });

  it('--postgres-url notaurl exits 2 in every command that takes it', async () => {
    const commands = [['server'], ['users', 'create', 'x'], ['vapid', 'show'], ['vapid', 'regenerate', '--yes'], ['pubsub', 'publish', 'c', 'm'], ['pubsub', 'tail', 'c']];
    const results = await Promise.all(commands.map((c) => runCli([...c, '--postgres-url', 'notaurl'])));
    results.forEach((res, i) => expect(res.code, commands[i]!.join(' ')).toBe(2));
  });

  it("blames a bad env value on the variable, not on the flag", async () => {
    const res = await runCli(['server', '--postgres-url', 'postgres://u@127.0.0.1:1/d'], { env: { CODER_LITE_POSTGRES_POOL_MAX: 'lots' } });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^Error: invalid CODER_LITE_POSTGRES_POOL_MAX "lots": expected a whole number from 1 to 1000/);
    const flag = await runCli(['server', '--postgres-pool-max', '0']);
    expect(flag.stderr).toMatch(/invalid --postgres-pool-max "0"/);
  });

  it('server --config: flag > env > file > default; --write-config prints it back with secrets redacted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'coder-lite-config-'));
    const file = join(dir, 'coder-lite.yaml');
    await writeFile(
      file,
      ['http-address: 127.0.0.1:4000', 'postgres-pool-max: 7', 'fake-tokens: 3', 'shutdown-grace: 2s', 'webpush: false',
        'postgres-url: postgres://coder:hunter2@db:5432/coder', 'llm-api-key: sk-secret', 'pubsub: nats', 'nats-url: nats://alice:natspw@nats:4222', 'nats-token: tok'].join('\n'),
    );
    const res = await runCli(['server', '--config', file, '--write-config', '--fake-tokens', '5'], { env: { CODER_LITE_POSTGRES_POOL_MAX: '9' } });
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.split('\n');
    expect(lines).toContain('http-address: 127.0.0.1:4000'); // file over default
    expect(lines).toContain('postgres-pool-max: 9'); // env over file
    expect(lines).toContain('fake-tokens: 5'); // flag over file
    expect(lines).toContain('shutdown-grace: 2s');
    expect(lines).toContain('webpush: false');
    expect(lines).toContain('log-level: info'); // default
    expect(res.stdout).not.toMatch(/hunter2|sk-secret|natspw|tok\b/);
    expect(lines).toContain('postgres-url: postgres://coder:[redacted]@db:5432/coder');
    expect(lines).toContain('llm-api-key: "[redacted]"');

    await writeFile(file, 'fake-tokens: many\n');
    const bad = await runCli(['server', '--config', file, '--write-config']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`invalid fake-tokens in ${file} "many"`);
    await writeFile(file, 'no-such-key: 1\n');
    const unknown = await runCli(['server', '--config', file, '--write-config']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown key "no-such-key"');
  });

  it('--json on the commands that return data', async () => {
    const res = await runCli(['server', 'postgres-builtin-url', '--json', '--data-dir', '/tmp/coder-lite-no-such-dir']);
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout)).toMatchObject({ error: { code: 1, message: expect.stringContaining('no running coder-lite server') } });
    const { url } = await createTestDatabase();
    const pub = await runCli(['pubsub', 'publish', 'chan', 'hello', '--json', '--postgres-url', url]);
    expect(pub.code, pub.stderr).toBe(0);
    expect(JSON.parse(pub.stdout)).toEqual({ channel: 'chan', bytes: 5, backend: 'postgres' });
  });
});
