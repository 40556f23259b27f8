import { connect as netConnect } from 'node:net';
import { performance } from 'node:perf_hooks';

import pg from 'pg';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

import { LatencyRecorder, type LatencySummary } from '../observability/quantiles.js';
import { asDatabaseError, DatabaseUnavailableError, isConnectionError } from './errors.js';

/** A statement with a stable name: the name labels its metrics and makes it a prepared statement. */
export interface NamedQuery {
  readonly name: string;
  readonly text: string;
}

export function namedQuery(name: string, text: string): NamedQuery {
  return { name, text };
}

export interface QueryOptions {
  /** Aborting rejects at once and cancels the statement on the server. */
  signal?: AbortSignal;
}

export type Row = pg.QueryResultRow;

/** What store functions need: run a named statement. Both the pool and a transaction provide it. */
export interface Queryable {
  query<R extends Row = Row>(q: NamedQuery, values?: readonly unknown[], opts?: QueryOptions): Promise<pg.QueryResult<R>>;
}

export interface Database extends Queryable {
  /** Runs fn inside BEGIN/COMMIT on one connection; rolls back if it throws. */
  tx<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  stats(): DbStats;
  /** Connection settings, for components that need a dedicated connection of their own (LISTEN, batch sender). */
  readonly connectionConfig: pg.ClientConfig;
  readonly poolMax: number;
  close(): Promise<void>;
}

export interface DbStats {
  poolMax: number;
  total: number;
  idle: number;
  waiting: number;
  peakWaiting: number;
  /** Integral of the waiting count over time (waiter-seconds); divide by elapsed time for the mean. */
  waitingSeconds: number;
  acquires: number;
  /** Acquisitions that found the pool at its limit with no idle connection and had to queue. */
  waitCount: number;
  acquireWait: LatencySummary;
  queries: Record<string, number>;
}

export interface DatabaseOptions {
  connectionString: string;
  max?: number;
  registry?: Registry;
  /** Name shown in pg_stat_activity. */
  applicationName?: string;
}

class PoolStats {
  readonly queries = new Map<string, number>();
  readonly acquireWait = new LatencyRecorder();
  acquires = 0;
  waitCount = 0;
  waiting = 0;
  peakWaiting = 0;
  private waitingIntegral = 0;
  private lastChange = performance.now();

  setWaiting(delta: number): void {
    const now = performance.now();
    this.waitingIntegral += (this.waiting * (now - this.lastChange)) / 1000;
    this.lastChange = now;
    this.waiting += delta;
    if (this.waiting > this.peakWaiting) this.peakWaiting = this.waiting;
  }

  waitingSeconds(): number {
    return this.waitingIntegral + (this.waiting * (performance.now() - this.lastChange)) / 1000;
  }
}

class Metrics {
  readonly queries: Counter<'query'>;
  readonly duration: Histogram<'query'>;
  readonly acquireWait: Histogram;
  readonly waitCount: Counter;

  constructor(registry: Registry | undefined, pool: pg.Pool) {
    const registers = registry ? [registry] : [];
    this.queries = new Counter({ name: 'coderlite_db_queries_total', help: 'Queries run, by query name.', labelNames: ['query'], registers });
    this.duration = new Histogram({
      name: 'coderlite_db_query_duration_seconds',
      help: 'Query duration including the wait for a connection, by query name.',
      labelNames: ['query'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.acquireWait = new Histogram({
      name: 'coderlite_db_pool_acquire_wait_seconds',
      help: 'Time spent waiting for a pool connection.',
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    this.waitCount = new Counter({ name: 'coderlite_db_pool_wait_count_total', help: 'Acquisitions that had to wait for a connection.', registers });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers, collect() { this.set(read()); } });
    gauge('coderlite_db_pool_total_connections', 'Open pool connections.', () => pool.totalCount);
    gauge('coderlite_db_pool_idle_connections', 'Idle pool connections.', () => pool.idleCount);
    gauge('coderlite_db_pool_waiting_connections', 'Requests waiting for a pool connection.', () => pool.waitingCount);
  }
}

/** Asks the server to cancel whatever `client` is running, over a short side connection (the protocol's CancelRequest). */
function cancelBackend(config: pg.ClientConfig, client: pg.PoolClient): void {
  const { processID, secretKey } = client as unknown as { processID: number | null; secretKey: number | null };
  if (processID === null || secretKey === null) return;
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(processID, 8);
  packet.writeInt32BE(secretKey, 12);
  const host = config.host ?? 'localhost';
  const port = config.port ?? 5432;
  const target = host.startsWith('/') ? { path: `${host}/.s.PGSQL.${port}` } : { host, port };
  const socket = netConnect(target, () => socket.end(packet));
  socket.on('error', () => socket.destroy());
  socket.setTimeout(5000, () => socket.destroy());
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('query aborted', { cause: reason });
}

/**
 * Runs one named statement on `client`, counted and timed. With a signal, an abort rejects at once and cancels the
 * statement on the server; `settled` resolves only when the server has answered, since only then is the connection
 * reusable.
 */
function execute<R extends Row>(
  client: pg.PoolClient,
  config: pg.ClientConfig,
  stats: PoolStats,
  metrics: Metrics,
  q: NamedQuery,
  values: readonly unknown[] | undefined,
  opts: QueryOptions | undefined,
  startedAt: number,
): { result: Promise<pg.QueryResult<R>>; settled: Promise<unknown> } {
  stats.queries.set(q.name, (stats.queries.get(q.name) ?? 0) + 1);
  metrics.queries.inc({ query: q.name });
  const run = client.query<R>({ name: q.name, text: q.text, values: values as unknown[] | undefined }).catch((err: unknown) => {
    throw asDatabaseError(err, q.name);
  });
  const settled = run.then(
    () => undefined,
    (err: unknown) => err,
  );
  void settled.then(() => metrics.duration.observe({ query: q.name }, (performance.now() - startedAt) / 1000));
  const signal = opts?.signal;
  if (!signal) return { result: run, settled };
  const result = new Promise<pg.QueryResult<R>>((resolve, reject) => {
    const onAbort = () => {
      cancelBackend(config, client);
      reject(abortError(signal));
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    run.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
  return { result, settled };
}

export function createDatabase(opts: DatabaseOptions): Database {
  const max = opts.max ?? 10;
  const config: pg.ClientConfig = { ...parseConnectionString(opts.connectionString), application_name: opts.applicationName ?? 'coder-lite' };
  // A server that accepts TCP but never answers (a stuck failover) must not hold a caller forever.
  const pool = new pg.Pool({ ...config, max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 } as pg.PoolConfig);
  // pg-pool listens for errors only while a client is idle and removes that listener at checkout, so a connection
  // that dies while checked out (server restart, pg_terminate_backend) would raise an unhandled 'error' and kill the
  // process. Every client gets a listener of its own for life; the failure marks it so release destroys it.
  const broken = new WeakSet<pg.ClientBase>();
  pool.on('connect', (client) => client.on('error', () => broken.add(client)));
  pool.on('error', () => undefined);
  const stats = new PoolStats();
  const metrics = new Metrics(opts.registry, pool);

  async function acquire(signal?: AbortSignal): Promise<pg.PoolClient> {
    signal?.throwIfAborted();
    const mustWait = pool.idleCount === 0 && pool.totalCount >= max;
    if (mustWait) {
      stats.waitCount++;
      metrics.waitCount.inc();
    }
    stats.setWaiting(1);
    const t0 = performance.now();
    try {
      const connecting = pool.connect().catch((err: unknown) => {
        throw new DatabaseUnavailableError('the database is unavailable (connect)', { cause: err });
      });
      if (!signal) return await connecting;
      // A caller that gives up while queued gets its rejection now; the connection, when it comes, goes back.
      return await new Promise<pg.PoolClient>((resolve, reject) => {
        const onAbort = () => {
          reject(abortError(signal));
          void connecting.then((c) => release(c, undefined), () => undefined);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        connecting.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
      });
    } finally {
      const waited = (performance.now() - t0) / 1000;
      stats.setWaiting(-1);
      stats.acquires++;
      stats.acquireWait.record(waited);
      metrics.acquireWait.observe(waited);
    }
  }

  // A connection that failed, or a statement that failed for reasons other than SQL, poisons the client: destroy it
  // rather than hand it to the next waiter. An SQL error (constraint, cancel) leaves the connection usable.
  const release = (client: pg.PoolClient, err: unknown) => {
    const poisoned = broken.has(client) || isConnectionError(err) || (err instanceof Error && !(err instanceof pg.DatabaseError));
    client.release(poisoned ? (err instanceof Error ? err : new Error('connection failed')) : undefined);
  };

  return {
    connectionConfig: config,
    poolMax: max,
    async query<R extends Row>(q: NamedQuery, values?: readonly unknown[], qopts?: QueryOptions) {
      const startedAt = performance.now();
      const client = await acquire(qopts?.signal);
      const { result, settled } = execute<R>(client, config, stats, metrics, q, values, qopts, startedAt);
      void settled.then((err) => release(client, err));
      return result;
    },
    async tx<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await acquire();
      let failure: unknown;
      const control = (sql: string) =>
        client.query(sql).catch((err: unknown) => {
          throw asDatabaseError(err, sql);
        });
      try {
        await control('BEGIN');
        const scoped: Queryable = {
          query: <R extends Row>(q: NamedQuery, values?: readonly unknown[], qopts?: QueryOptions) => execute<R>(client, config, stats, metrics, q, values, qopts, performance.now()).result,
        };
        const result = await fn(scoped);
        await control('COMMIT');
        return result;
      } catch (err) {
        failure = err;
        if (!isConnectionError(err) && !broken.has(client)) await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        release(client, failure);
      }
    },
    stats() {
      return {
        poolMax: max,
        total: pool.totalCount,
        idle: pool.idleCount,
        waiting: stats.waiting,
        peakWaiting: stats.peakWaiting,
        waitingSeconds: stats.waitingSeconds(),
        acquires: stats.acquires,
        waitCount: stats.waitCount,
        acquireWait: stats.acquireWait.summary(),
        queries: Object.fromEntries(stats.queries),
      };
    },
    async close() {
      await pool.end();
    },
  };
}

/** pg accepts a URL, but a parsed config lets dedicated clients and the cancel path share host/port. */
function parseConnectionString(url: string): pg.ClientConfig {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new Error('the PostgreSQL URL is not a valid URL (expected postgres://user:password@host:port/database)', { cause: err });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error(`the PostgreSQL URL must start with postgres:// (got ${parsed.protocol}//)`);
  }
  const sslmode = parsed.searchParams.get('sslmode');
  return {
    // libpq's convention: `?host=/dir` reaches the server over the Unix socket in that directory.
    host: parsed.searchParams.get('host') ?? (decodeURIComponent(parsed.hostname) || 'localhost'),
    port: parsed.port ? Number(parsed.port) : 5432,
    user: decodeURIComponent(parsed.username) || undefined,
    password: decodeURIComponent(parsed.password) || undefined,
    database: decodeURIComponent(parsed.pathname.slice(1)) || undefined,
    ssl: sslmode && sslmode !== 'disable' ? { rejectUnauthorized: sslmode === 'verify-full' } : undefined,
  };
}

/** host:port/database, never the password: for logs and error messages. */
export function describeConnection(config: pg.ClientConfig): string {
  return `${config.host ?? 'localhost'}:${config.port ?? 5432}/${config.database ?? ''}`;
}
