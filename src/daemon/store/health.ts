import { namedQuery, type Queryable } from '../postgres/pool.js';

const pingQ = namedQuery('ping', 'SELECT 1');

export async function ping(db: Queryable, signal?: AbortSignal): Promise<void> {
  await db.query(pingQ, [], signal ? { signal } : undefined);
}

const notificationQueueUsageQ = namedQuery('notificationQueueUsage', 'SELECT pg_notification_queue_usage() AS usage');

/** The fraction of PostgreSQL's NOTIFY queue (8 GB) in use: it grows while a listener stays behind or a transaction holds it. */
export async function notificationQueueUsage(db: Queryable, signal?: AbortSignal): Promise<number> {
  const { rows } = await db.query<{ usage: number }>(notificationQueueUsageQ, [], signal ? { signal } : undefined);
  return Number(rows[0]!.usage);
}
