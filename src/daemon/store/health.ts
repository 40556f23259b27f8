import { namedQuery, type Queryable } from '../postgres/pool.js';

const pingQ = namedQuery('ping', 'SELECT 1');
const serverVersionQ = namedQuery('getServerVersion', 'SHOW server_version');
const backendPidQ = namedQuery('getBackendPid', 'SELECT pg_backend_pid() AS pid');

export async function ping(db: Queryable, signal?: AbortSignal): Promise<void> {
  await db.query(pingQ, [], signal ? { signal } : undefined);
}

const notificationQueueUsageQ = namedQuery('notificationQueueUsage', 'SELECT pg_notification_queue_usage() AS usage');

/** The fraction of PostgreSQL's NOTIFY queue (8 GB) in use: it grows while a listener stays behind or a transaction holds it. */
export async function notificationQueueUsage(db: Queryable, signal?: AbortSignal): Promise<number> {
  const { rows } = await db.query<{ usage: number }>(notificationQueueUsageQ, [], signal ? { signal } : undefined);
  return Number(rows[0]!.usage);
}

/** The server's version as it reports it, e.g. `18.4`. */
export async function getServerVersion(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ server_version: string }>(serverVersionQ);
  return rows[0]!.server_version;
}

/** The process id of the backend serving this connection (on the database's host). */
export async function getBackendPid(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ pid: number }>(backendPidQ);
  return rows[0]!.pid;
}
