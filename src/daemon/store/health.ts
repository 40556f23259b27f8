import { namedQuery, type Queryable } from '../postgres/pool.js';

const pingQ = namedQuery('ping', 'SELECT 1');

export async function ping(db: Queryable, signal?: AbortSignal): Promise<void> {
  await db.query(pingQ, [], signal ? { signal } : undefined);
}
