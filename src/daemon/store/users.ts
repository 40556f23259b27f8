import { namedQuery, type Queryable } from '../postgres/pool.js';
import type { User } from './types.js';

interface UserRow {
  id: string;
  username: string;
  email: string | null;
  created_at: Date;
}

export const toUser = (r: UserRow): User => ({ id: r.id, username: r.username, email: r.email, createdAt: r.created_at });

const insertUserQ = namedQuery('insertUser', 'INSERT INTO users (username, email) VALUES ($1, $2) RETURNING id, username, email, created_at');

export async function insertUser(db: Queryable, username: string, email: string | null): Promise<User> {
  const { rows } = await db.query<UserRow>(insertUserQ, [username, email]);
  return toUser(rows[0]!);
}

const getUserByIDQ = namedQuery('getUserByID', 'SELECT id, username, email, created_at FROM users WHERE id = $1');

export async function getUserByID(db: Queryable, id: string): Promise<User | undefined> {
  const { rows } = await db.query<UserRow>(getUserByIDQ, [id]);
  return rows[0] && toUser(rows[0]);
}

const getUserByUsernameQ = namedQuery('getUserByUsername', 'SELECT id, username, email, created_at FROM users WHERE lower(username) = lower($1)');

export async function getUserByUsername(db: Queryable, username: string): Promise<User | undefined> {
  const { rows } = await db.query<UserRow>(getUserByUsernameQ, [username]);
  return rows[0] && toUser(rows[0]);
}
