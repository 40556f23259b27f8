import { namedQuery, type Queryable } from '../postgres/pool.js';
import type { User } from './types.js';

export interface UserRow {
  id: string;
  username: string;
  email: string | null;
  is_admin: boolean;
  suspended_at: Date | null;
  created_at: Date;
}

const userColumns = 'id, username, email, is_admin, suspended_at, created_at';

export const toUser = (r: UserRow): User => ({
  id: r.id,
  username: r.username,
  email: r.email,
  isAdmin: r.is_admin,
  suspendedAt: r.suspended_at,
  createdAt: r.created_at,
});

const lockUserCreationQ = namedQuery('lockUserCreation', `SELECT pg_advisory_xact_lock(hashtext('coder-lite:user-create'))`);

/** Serialises user creation, so exactly one first user of an empty database becomes admin. Inside the transaction. */
export async function lockUserCreation(tx: Queryable): Promise<void> {
  await tx.query(lockUserCreationQ);
}

// The first user of an empty database is an admin whatever was asked: someone has to be able to manage the rest.
const insertUserQ = namedQuery(
  'insertUser',
  `INSERT INTO users (username, email, is_admin) VALUES ($1, $2, $3 OR NOT EXISTS (SELECT 1 FROM users)) RETURNING ${userColumns}`,
);

export async function insertUser(db: Queryable, username: string, email: string | null, isAdmin = false): Promise<User> {
  const { rows } = await db.query<UserRow>(insertUserQ, [username, email, isAdmin]);
  return toUser(rows[0]!);
}

const getUserByIDQ = namedQuery('getUserByID', `SELECT ${userColumns} FROM users WHERE id = $1`);

export async function getUserByID(db: Queryable, id: string): Promise<User | undefined> {
  const { rows } = await db.query<UserRow>(getUserByIDQ, [id]);
  return rows[0] && toUser(rows[0]);
}

const getUserByUsernameQ = namedQuery('getUserByUsername', `SELECT ${userColumns} FROM users WHERE lower(username) = lower($1)`);

export async function getUserByUsername(db: Queryable, username: string): Promise<User | undefined> {
  const { rows } = await db.query<UserRow>(getUserByUsernameQ, [username]);
  return rows[0] && toUser(rows[0]);
}

const listUsersQ = namedQuery('listUsers', `SELECT ${userColumns} FROM users ORDER BY lower(username)`);

export async function listUsers(db: Queryable): Promise<User[]> {
  const { rows } = await db.query<UserRow>(listUsersQ);
  return rows.map(toUser);
}

const deleteUserQ = namedQuery('deleteUser', 'DELETE FROM users WHERE id = $1');

/** Deletes the user with its keys, chats and push subscriptions (ON DELETE CASCADE). */
export async function deleteUser(db: Queryable, id: string): Promise<boolean> {
  return ((await db.query(deleteUserQ, [id])).rowCount ?? 0) > 0;
}

const setUserSuspendedQ = namedQuery(
  'setUserSuspended',
  `UPDATE users SET suspended_at = CASE WHEN $2 THEN coalesce(suspended_at, now()) ELSE NULL END WHERE id = $1 RETURNING ${userColumns}`,
);

export async function setUserSuspended(db: Queryable, id: string, suspended: boolean): Promise<User | undefined> {
  const { rows } = await db.query<UserRow>(setUserSuspendedQ, [id, suspended]);
  return rows[0] && toUser(rows[0]);
}
