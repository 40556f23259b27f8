import { namedQuery, type Queryable } from '../postgres/pool.js';

export interface StoredResponse {
  status: number;
  body: unknown;
}

const claimIdempotencyKeyQ = namedQuery(
  'claimIdempotencyKey',
  'INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES ($1, $2, $3) ON CONFLICT (user_id, key) DO NOTHING RETURNING key',
);

// A separate statement: one that inserted and selected at once would read with a snapshot taken before the
// conflicting transaction committed, and see nothing.
const getIdempotencyKeyQ = namedQuery('getIdempotencyKey', 'SELECT fingerprint, status, response FROM idempotency_keys WHERE user_id = $1 AND key = $2');

/**
 * Inside the transaction that does the work: claims the key, or returns the earlier request's fingerprint and answer.
 * A concurrent request with the same key waits on the key's row until the first one commits or rolls back.
 */
export async function claimIdempotencyKey(
  tx: Queryable,
  userId: string,
  key: string,
  fingerprint: string,
): Promise<{ claimed: true } | { claimed: false; fingerprint: string; response: StoredResponse }> {
  const { rowCount } = await tx.query(claimIdempotencyKeyQ, [userId, key, fingerprint]);
  if (rowCount === 1) return { claimed: true };
  const { rows } = await tx.query<{ fingerprint: string; status: number; response: unknown }>(getIdempotencyKeyQ, [userId, key]);
  const r = rows[0]!;
  return { claimed: false, fingerprint: r.fingerprint, response: { status: r.status, body: r.response } };
}

const storeIdempotentResponseQ = namedQuery('storeIdempotentResponse', 'UPDATE idempotency_keys SET status = $3, response = $4 WHERE user_id = $1 AND key = $2');

export async function storeIdempotentResponse(tx: Queryable, userId: string, key: string, response: StoredResponse): Promise<void> {
  await tx.query(storeIdempotentResponseQ, [userId, key, response.status, JSON.stringify(response.body)]);
}

const deleteExpiredIdempotencyKeysQ = namedQuery('deleteExpiredIdempotencyKeys', 'DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)');

export async function deleteExpiredIdempotencyKeys(db: Queryable, olderThanSeconds: number): Promise<number> {
  const { rowCount } = await db.query(deleteExpiredIdempotencyKeysQ, [olderThanSeconds]);
  return rowCount ?? 0;
}
