import { execFileSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { startServerOnPty, startServerProcess } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/db.js';

// util-linux's `script` (Debian's essential bsdutils) gives the server a pseudo-terminal.
const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const httpsWarning = 'the access URL is not https';

/** Once a request is answered the start has run to its end (warnings logged, signal handlers set); then stop it. */
async function startAndStop(args: string[]): Promise<string> {
  const server = await startServerProcess(args);
  await fetch(`${server.url}/healthz`);
  server.child.kill('SIGTERM');
  await server.exited;
  return server.stderr();
}

describe('server start, as a person or a supervisor sees it', () => {
  it.runIf(hasScript)('on a terminal: a short banner (URL, data dir, database, pubsub, web push key) and readable logs', async () => {
    const { url } = await createTestDatabase();
    const server = await startServerOnPty(['--postgres-url', url, '--data-dir', '/tmp/coder-lite-banner-test']);
    await server.stop();
    const out = server.output();
    expect(out).toContain('shutdown complete');
    expect(out).toContain('coder-lite is running');
    expect(out).toMatch(/^ {2}URL {8}http:\/\/127\.0\.0\.1:\d+$/m);
    expect(out).toContain('  Data dir   /tmp/coder-lite-banner-test');
    expect(out).toMatch(/^ {2}Database {3}\S+:\d+\/t_[0-9a-f]+/m);
    expect(out).toContain('  Pubsub     PostgreSQL LISTEN/NOTIFY');
    expect(out).toMatch(/^ {2}Web push {3}VAPID public key [A-Za-z0-9_-]{87}$/m);
    // pino-pretty's lines, not JSON; and a loopback access URL is a secure context: no warning.
    expect(out).not.toMatch(/^\{"level"/m);
    expect(out).not.toContain(httpsWarning);
  });

  it.runIf(hasScript)('on a terminal with --log-format json: JSON lines and no banner', async () => {
    const { url } = await createTestDatabase();
    const server = await startServerOnPty(['--postgres-url', url, '--log-format', 'json', '--pubsub', 'memory']);
    await server.stop();
    const out = server.output();
    expect(out).toContain('"msg":"shutdown complete"');
    expect(out).toMatch(/^\{"level":30,.*"msg":"coder-lite is listening"\}$/m);
    expect(out).not.toContain('coder-lite is running');
  });

  it('without a terminal: JSON only; the non-https warning only for an access URL off loopback', async () => {
    const { url } = await createTestDatabase();
    const loopback = await startAndStop(['--postgres-url', url, '--pubsub', 'memory']);
    expect(loopback).toContain('"msg":"shutdown complete"');
    expect(loopback).not.toContain(httpsWarning);
    expect(loopback).not.toContain('coder-lite is running');
    expect(loopback.trim().split('\n').every((l) => l.startsWith('{'))).toBe(true);

    const remote = await startAndStop(['--postgres-url', url, '--pubsub', 'memory', '--access-url', 'http://coder.example.com']);
    expect(remote).toMatch(new RegExp(`"accessUrl":"http://coder.example.com".*${httpsWarning}`));

    const secure = await startAndStop(['--postgres-url', url, '--pubsub', 'memory', '--access-url', 'https://coder.example.com']);
    expect(secure).toContain('"msg":"shutdown complete"');
    expect(secure).not.toContain(httpsWarning);
  });
});
