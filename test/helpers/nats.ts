import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freeFixedPort } from './net.js';

/** Debian's package puts it here; CODER_LITE_TEST_NATS_SERVER points elsewhere. */
export const natsServerBin = process.env.CODER_LITE_TEST_NATS_SERVER ?? '/usr/sbin/nats-server';

export interface NatsServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port, as an operator's restart would. */
  start(): Promise<void>;
  /** Stops it for good and removes its configuration. */
  dispose(): Promise<void>;
}

export interface NatsServerOptions {
  /** Extra lines of nats-server configuration, e.g. `max_pending: 65536`. */
  config?: string;
}

/** Resolves once a TCP connection to the port succeeds (nats-server accepts right after it binds). */
async function waitForPort(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  for (;;) {
    if (child.exitCode !== null || child.pid === undefined) throw new Error(`nats-server exited (${child.exitCode}): ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A nats-server of the test's own on a fixed free loopback port, so a restart keeps its URL. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const port = await freeFixedPort();
  const dir = await mkdtemp(join(tmpdir(), 'coder-lite-nats-'));
  const configFile = join(dir, 'nats.conf');
  await writeFile(configFile, `host: 127.0.0.1\nport: ${port}\n${opts.config ?? ''}\n`);
  let child: ChildProcess | undefined;
  const start = async () => {
    let stderr = '';
    const c = spawn(natsServerBin, ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child = c;
    const spawnFailed = new Promise<never>((_resolve, reject) =>
      c.once('error', (err) =>
        reject(new Error(`cannot start ${natsServerBin} (apt-get install nats-server, or set CODER_LITE_TEST_NATS_URL)`, { cause: err })),
      ),
    );
    await Promise.race([waitForPort(port, c, () => stderr), spawnFailed]);
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop,
    start,
    async dispose() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
