import { namedQuery, type Queryable } from '../postgres/pool.js';
import type { User } from './types.js';
import { toUser } from './users.js';

const insertAPIKeyQ = namedQuery('insertAPIKey', 'INSERT INTO api_keys (id, user_id, hashed_secret) VALUES ($1, $2, $3)');

export async function insertAPIKey(db: Queryable, id: string, userId: string, hashedSecret: Buffer): Promise<void> {
  await db.query(insertAPIKeyQ, [id, userId, hashedSecret]);
}

// One round trip per authenticated request: the key and its user together.
const getAPIKeyWithUserQ = namedQuery(
  'getAPIKeyWithUser',
  `SELECT k.hashed_secret, u.id, u.username, u.email, u.created_at
     FROM api_keys k JOIN users u ON u.id = k.user_id
    WHERE k.id = $1`,
);

export async function getAPIKeyWithUser(db: Queryable, id: string): Promise<{ hashedSecret: Buffer; user: User } | undefined> {
  const { rows } = await db.query<{ hashed_secret: Buffer; id: string; username: string; email: string | null; created_at: Date }>(getAPIKeyWithUserQ, [id]);
  const r = rows[0];
  return r && { hashedSecret: r.hashed_secret, user: toUser(r) };
}
