import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import { startEmbeddedPostgres } from '../../src/daemon/postgres/embedded.js';
import { createDatabase } from '../../src/daemon/postgres/pool.js';
import { getChatByID } from '../../src/daemon/store/chats.js';
import { createUserWithToken } from '../../src/daemon/users/service.js';
import { chatApi } from '../helpers/chatClient.js';
import { runCli, startServerProcess, type ServerProcess } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/db.js';

/** Fails unless the process has exited when `ms` have passed: the bound an operator's supervisor relies on. */
function exitsWithin(server: ServerProcess, ms: number): Promise<number | string> {
  return Promise.race([
    server.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running ${ms} ms after the signal:\n${server.stderr().slice(-1500)}`)), ms).unref()),
  ]);
}

/** Starts a request whose body never finishes arriving, as a slow or stuck upload. */
async function stalledUpload(baseUrl: string, token: string) {
  const { port } = new URL(baseUrl);
  const socket = connect(Number(port), '127.0.0.1');
  // The server cutting it is the point: a reset is expected.
  socket.on('error', () => undefined);
  // Read whatever comes, so the server's FIN is seen and the socket closes.
  socket.resume();
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`POST /api/experimental/chats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"message":"`);
  return { closed: new Promise<void>((resolve) => socket.once('close', () => resolve())) };
}

const logged = (server: ServerProcess, msg: string) => expect.poll(() => server.stderr().includes(msg), { timeout: 10_000, interval: 20 }).toBe(true);

describe('signals', () => {
  it('SIGTERM with uploads in flight: they get the grace, then their connections are cut and the daemon exits 0', async () => {
    const { url } = await createTestDatabase();
    const server = await startServerProcess(['--postgres-url', url, '--shutdown-grace', '1s']);
    const db = createDatabase({ connectionString: url, max: 1 });
    const { token } = await createUserWithToken(db, 'uploader', undefined);
    await db.close();
    const uploads = await Promise.all(Array.from({ length: 5 }, () => stalledUpload(server.url, token)));
    server.child.kill('SIGTERM');
    expect(await exitsWithin(server, 1000 + 2000)).toBe(0);
    await Promise.all(uploads.map((u) => u.closed));
    expect(server.stderr()).toContain('shutdown complete');
  });

  it('a second signal skips the grace', async () => {
    const { url } = await createTestDatabase();
    const server = await startServerProcess(['--postgres-url', url, '--shutdown-grace', '10m']);
    const db = createDatabase({ connectionString: url, max: 1 });
    const { token } = await createUserWithToken(db, 'uploader2', undefined);
    await db.close();
    const upload = await stalledUpload(server.url, token);
    server.child.kill('SIGTERM');
    await logged(server, '"msg":"shutting down"');
    server.child.kill('SIGTERM');
    expect(await exitsWithin(server, 5000)).toBe(0);
    await upload.closed;
  });

  it('Ctrl-C in a terminal (SIGINT to the whole process group) mid-reply: exit 0, no stack trace, PostgreSQL stopped, the chat pending', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'coder-lite-sigint-'));
    await chmod(dir, 0o755);
    afterAll(() => rm(dir, { recursive: true, force: true }));
    const server = await startServerProcess(['--data-dir', dir, '--fake-tokens', '1000', '--fake-token-delay', '20ms', '--no-webpush'], { detached: true });
    const created = await runCli(['users', 'create', 'alice', '--data-dir', dir, '--json']);
    expect(created.code, created.stderr).toBe(0);
    const { token } = JSON.parse(created.stdout) as { token: string };
    const api = chatApi(server.url, token);
    const chat = await api.createChat('a long reply');
    await expect.poll(async () => (await api.get(chat.id)).body.status, { timeout: 10_000 }).toBe('running');
    const postmaster = Number((await readFile(join(dir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]);

    process.kill(-server.child.pid!, 'SIGINT');
    expect(await exitsWithin(server, 15_000)).toBe(0);
    expect(server.stderr()).not.toMatch(/Unhandled|\n\s+at |EPIPE/);
    expect(server.stderr()).toContain('embedded PostgreSQL stopped');
    expect(() => process.kill(postmaster, 0)).toThrow();

    const embedded = await startEmbeddedPostgres({ dataDir: dir, logger: silentLogger() });
    const db = createDatabase({ connectionString: embedded.url, max: 1 });
    try {
      expect((await getChatByID(db, chat.id))!.status).toBe('pending');
    } finally {
      await db.close();
      await embedded.stop();
    }
  });
});
