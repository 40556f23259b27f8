import { namedQuery, type Queryable } from '../postgres/pool.js';

const pingQ = namedQuery('ping', 'SELECT 1');
const serverVersionQ = namedQuery('getServerVersion', 'SHOW server_version');
const backendPidQ = namedQuery('getBackendPid', 'SELECT pg_backend_pid() AS pid');

export async function ping(db: Queryable, signal?: AbortSignal): Promise<void> {
  await db.query(pingQ, [], signal ? { signal } : undefined);
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
