import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { freeFixedPort } from './net.js';

const run = promisify(execFile);
const bin = '/usr/lib/postgresql/15/bin';

/** A PostgreSQL server a test can stop and start under a daemon: Debian's PostgreSQL 15 (`.ci/run` installs it). */
export interface StoppablePostgres {
  url: string;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
}

/** As root, PostgreSQL's tools must run as the postgres user. */
function asPostgres(tool: string, args: string[]) {
  const cmd = join(bin, tool);
  return userInfo().uid === 0 ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args);
}

/** A throwaway PostgreSQL 15 cluster on a free loopback port; `remove()` stops it and deletes its files. */
export async function createStoppablePostgres(): Promise<StoppablePostgres & { remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'coder-lite-pg15-'));
  await chmod(dir, 0o777);
  const data = join(dir, 'data');
  const port = await freeFixedPort();
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  const start = async () => {
    await asPostgres('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']);
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    await asPostgres('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '30', 'stop']);
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    restart: async () => {
      await stop('fast');
      await start();
    },
    remove: async () => {
      await stop('immediate').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
