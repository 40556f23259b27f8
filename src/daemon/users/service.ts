import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import type { Database, Queryable } from '../postgres/pool.js';
import { getAPIKeyWithUser, insertAPIKey } from '../store/apiKeys.js';
import type { User } from '../store/types.js';
import { getUserByUsername, insertUser } from '../store/users.js';

export class UserInputError extends Error {}

const usernamePattern = /^[a-zA-Z0-9](?:[a-zA-Z0-9-_.]{0,30}[a-zA-Z0-9])?$/;
const tokenPattern = /^([a-z0-9]{10})-([A-Za-z0-9_-]{22,64})$/;

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();

// Random ids from a safe alphabet; 10 chars of [a-z0-9] is ~51 bits, plenty for a lookup key.
function randomId(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(length);
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

/** Creates an API key and returns the token, which is shown once: only a hash of its secret is stored. */
export async function createAPIKey(db: Queryable, userId: string): Promise<string> {
  const id = randomId(10);
  const secret = randomBytes(24).toString('base64url');
  await insertAPIKey(db, id, userId, hashSecret(secret));
  return `${id}-${secret}`;
}

export async function createUserWithToken(db: Database, username: string, email: string | undefined): Promise<{ user: User; token: string }> {
  if (!usernamePattern.test(username)) {
    throw new UserInputError(`invalid username "${username}": use 1-32 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`);
  }
  if (email !== undefined && !/^[^\s@]+@[^\s@]+$/.test(email)) throw new UserInputError(`invalid email "${email}"`);
  // Not a usage mistake (exit 1, not 2): the name is valid, just taken.
  const taken = () => new Error(`a user named "${username}" already exists`);
  try {
    return await db.tx(async (tx) => {
      if (await getUserByUsername(tx, username)) throw taken();
      const user = await insertUser(tx, username, email ?? null);
      return { user, token: await createAPIKey(tx, user.id) };
    });
  } catch (err) {
    // Two creates of one name racing: the unique index decides.
    if ((err as { code?: string }).code === '23505') throw taken();
    throw err;
  }
}

/** The user a token belongs to, or undefined for a malformed, unknown or wrong token. */
export async function authenticateToken(db: Queryable, token: string): Promise<User | undefined> {
  const m = tokenPattern.exec(token);
  if (!m) return undefined;
  const key = await getAPIKeyWithUser(db, m[1]!);
  if (!key) return undefined;
  const given = hashSecret(m[2]!);
  return given.length === key.hashedSecret.length && timingSafeEqual(given, key.hashedSecret) ? key.user : undefined;
}
