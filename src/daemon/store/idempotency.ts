import { namedQuery, type Queryable } from '../postgres/pool.js';

export interface StoredResponse {
  status: number;
  body: unknown;
}

const deleteExpiredIdempotencyKeysQ = namedQuery('deleteExpiredIdempotencyKeys', 'DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)');

export async function deleteExpiredIdempotencyKeys(db: Queryable, olderThanSeconds: number): Promise<number> {
  const { rowCount } = await db.query(deleteExpiredIdempotencyKeysQ, [olderThanSeconds]);
  return rowCount ?? 0;
}
