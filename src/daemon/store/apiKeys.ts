import { namedQuery, type Queryable } from '../postgres/pool.js';
import type { APIKey, User } from './types.js';
import { toUser, type UserRow } from './users.js';

interface APIKeyRow {
  id: string;
  user_id: string;
  name: string;
  created_at: Date;
  expires_at: Date;
  last_used_at: Date | null;
}

const keyColumns = 'id, user_id, name, created_at, expires_at, last_used_at';

const toAPIKey = (r: APIKeyRow): APIKey => ({ id: r.id, userId: r.user_id, name: r.name, createdAt: r.created_at, expiresAt: r.expires_at, lastUsedAt: r.last_used_at });

const insertAPIKeyQ = namedQuery(
  'insertAPIKey',
  `INSERT INTO api_keys (id, user_id, hashed_secret, name, expires_at) VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
   RETURNING ${keyColumns}`,
);

export async function insertAPIKey(db: Queryable, key: { id: string; userId: string; hashedSecret: Buffer; name: string; lifetimeSeconds: number }): Promise<APIKey> {
  const { rows } = await db.query<APIKeyRow>(insertAPIKeyQ, [key.id, key.userId, key.hashedSecret, key.name, key.lifetimeSeconds]);
  return toAPIKey(rows[0]!);
}

// One round trip per authenticated request the key cache misses: the key and its user together.
const getAPIKeyWithUserQ = namedQuery(
  'getAPIKeyWithUser',
  `SELECT k.hashed_secret, k.expires_at, k.last_used_at, u.id, u.username, u.email, u.is_admin, u.suspended_at, u.created_at
     FROM api_keys k JOIN users u ON u.id = k.user_id
    WHERE k.id = $1`,
);

export interface APIKeyWithUser {
  hashedSecret: Buffer;
  expiresAt: Date;
  lastUsedAt: Date | null;
  user: User;
}

export async function getAPIKeyWithUser(db: Queryable, id: string): Promise<APIKeyWithUser | undefined> {
  const { rows } = await db.query<UserRow & { hashed_secret: Buffer; expires_at: Date; last_used_at: Date | null }>(getAPIKeyWithUserQ, [id]);
  const r = rows[0];
  return r && { hashedSecret: r.hashed_secret, expiresAt: r.expires_at, lastUsedAt: r.last_used_at, user: toUser(r) };
}

const listAPIKeysByUserQ = namedQuery('listAPIKeysByUser', `SELECT ${keyColumns} FROM api_keys WHERE user_id = $1 ORDER BY created_at, id`);

export async function listAPIKeysByUser(db: Queryable, userId: string): Promise<APIKey[]> {
  const { rows } = await db.query<APIKeyRow>(listAPIKeysByUserQ, [userId]);
  return rows.map(toAPIKey);
}

const deleteAPIKeyQ = namedQuery('deleteAPIKey', 'DELETE FROM api_keys WHERE id = $1 AND user_id = $2');

export async function deleteAPIKey(db: Queryable, id: string, userId: string): Promise<boolean> {
  return ((await db.query(deleteAPIKeyQ, [id, userId])).rowCount ?? 0) > 0;
}

// Replicas may race to record a use; the condition keeps it one write per key per interval anyway, and a key
// another replica is recording right now is skipped rather than waited for (nor deadlocked on: rows lock in id order).
const touchAPIKeysQ = namedQuery(
  'touchAPIKeys',
  `UPDATE api_keys SET last_used_at = now()
   WHERE id IN (
     SELECT id FROM api_keys
     WHERE id = ANY($1::text[]) AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))
     ORDER BY id FOR UPDATE SKIP LOCKED
   )`,
);

/** Records a use of each key, at most once per `intervalSeconds`. */
export async function touchAPIKeys(db: Queryable, ids: readonly string[], intervalSeconds: number): Promise<void> {
  await db.query(touchAPIKeysQ, [ids, intervalSeconds]);
}
