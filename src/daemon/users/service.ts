import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

import type { Logger } from '../observability/logger.js';
import { StatementBatcher } from '../postgres/batcher.js';
import type { Database, Queryable } from '../postgres/pool.js';
import type { Publisher } from '../pubsub/pubsub.js';
import { deleteAPIKey, insertAPIKey, listAPIKeysByUser, touchAPIKeys } from '../store/apiKeys.js';
import type { APIKey, User } from '../store/types.js';
import { deleteUser, getUserByID, getUserByUsername, insertUser, listUsers, lockUserCreation, setUserSuspended } from '../store/users.js';
import { authInvalidateChannel, revocationPayload, type APIKeyCache, type Revocation } from './apiKeyCache.js';

/** A value the caller got wrong (the CLI exits 2, the API answers 400). */
export class UserInputError extends Error {}
/** A name already taken (a user or a token name of that user). */
export class UserConflictError extends Error {}
export class UserNotFoundError extends Error {}
export class APIKeyNotFoundError extends Error {}

const usernamePattern = /^[a-zA-Z0-9](?:[a-zA-Z0-9-_.]{0,30}[a-zA-Z0-9])?$/;
const tokenNamePattern = /^[a-zA-Z0-9](?:[a-zA-Z0-9-_.]{0,62}[a-zA-Z0-9])?$/;
const tokenPattern = /^([a-z0-9]{10})-([A-Za-z0-9_-]{22,64})$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Coder's default for `tokens create`; the longest a token may live is a year. */
export const defaultTokenLifetimeSeconds = 30 * 24 * 3600;
export const maxTokenLifetimeSeconds = 365 * 24 * 3600;
/** A key's `last_used_at` is written at most this often (per replica; the statement keeps it once across replicas). */
export const lastUsedIntervalSeconds = 60;

// The one-shot `hash`: a turn hashes a token per request, and a Hash object per call costs more than the digest.
const hashSecret = (secret: string) => hash('sha256', secret, 'buffer');

// Random ids from a safe alphabet; 10 chars of [a-z0-9] is ~51 bits, plenty for a lookup key.
function randomId(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(length);
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

export interface TokenOptions {
  name?: string;
  lifetimeSeconds?: number;
}

/** Creates an API key and returns the token, which is shown once: only a hash of its secret is stored. */
export async function createAPIKey(db: Queryable, userId: string, opts: TokenOptions = {}): Promise<{ key: APIKey; token: string }> {
  const id = randomId(10);
  const secret = randomBytes(24).toString('base64url');
  const name = opts.name ?? `token-${id}`;
  if (!tokenNamePattern.test(name)) throw new UserInputError(`invalid token name "${name}": use 1-64 letters, digits, '-', '_' or '.'`);
  const lifetimeSeconds = opts.lifetimeSeconds ?? defaultTokenLifetimeSeconds;
  if (!Number.isInteger(lifetimeSeconds) || lifetimeSeconds < 1 || lifetimeSeconds > maxTokenLifetimeSeconds) {
    throw new UserInputError(`invalid token lifetime ${lifetimeSeconds}s: from 1 second to 365 days`);
  }
  try {
    const key = await insertAPIKey(db, { id, userId, hashedSecret: hashSecret(secret), name, lifetimeSeconds });
    return { key, token: `${id}-${secret}` };
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw new UserConflictError(`the user already has a token named "${name}"`);
    throw err;
  }
}

export interface CreateUserOptions {
  email?: string;
  admin?: boolean;
  token?: TokenOptions;
}

/** Creates a user (and, with `token`, a first token in the same transaction). The first user of an empty database is an admin. */
export async function createUser(db: Database, username: string, opts: CreateUserOptions = {}): Promise<{ user: User; token?: string }> {
  if (!usernamePattern.test(username)) {
    throw new UserInputError(`invalid username "${username}": use 1-32 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`);
  }
  const { email } = opts;
  if (email !== undefined && !/^[^\s@]+@[^\s@]+$/.test(email)) throw new UserInputError(`invalid email "${email}"`);
  // `me` names the caller in every `/users/{user}` route.
  if (username.toLowerCase() === 'me') throw new UserInputError('"me" cannot be a username');
  const taken = () => new UserConflictError(`a user named "${username}" already exists`);
  try {
    return await db.tx(async (tx) => {
      await lockUserCreation(tx);
      if (await getUserByUsername(tx, username)) throw taken();
      const user = await insertUser(tx, username, email ?? null, opts.admin ?? false);
      if (!opts.token) return { user };
      const { token } = await createAPIKey(tx, user.id, { name: 'first', ...opts.token });
      return { user, token };
    });
  } catch (err) {
    // Two creates of one name racing: the unique index decides.
    if ((err as { code?: string }).code === '23505') throw taken();
    throw err;
  }
}

/** A user and its first token (`users create`). */
export async function createUserWithToken(db: Database, username: string, opts: Omit<CreateUserOptions, 'token'> & { token?: TokenOptions } = {}): Promise<{ user: User; token: string }> {
  const { user, token } = await createUser(db, username, { ...opts, token: opts.token ?? {} });
  return { user, token: token! };
}

/** A user by id or username (`me` is the HTTP layer's). */
export async function findUser(db: Queryable, ref: string): Promise<User> {
  const user = uuidPattern.test(ref) ? await getUserByID(db, ref) : await getUserByUsername(db, ref);
  if (!user) throw new UserNotFoundError(`no user "${ref}"`);
  return user;
}

export type AuthResult = { ok: true; user: User; keyId: string; expiresAt: Date } | { ok: false; reason: 'invalid' | 'expired' | 'suspended' };

export interface AuthenticatorOptions {
  db: Queryable;
  cache: APIKeyCache;
  logger: Logger;
  now?: () => number;
}

/**
 * Checks a token against the key cache: no query for a known key. Expiry is checked on every request against the
 * cached expiry; the use is recorded at most once a minute per key, off the request's path.
 */
export class Authenticator {
  private readonly now: () => number;
  /** When this replica last recorded each key's use; bounded with the cache (entries of gone keys are cheap). */
  private readonly touched = new Map<string, number>();
  /** The uses recorded in the same moment (500 users' first requests after a restart) are one statement. */
  private readonly touches: StatementBatcher<string, void>;

  constructor(private readonly opts: AuthenticatorOptions) {
    this.now = opts.now ?? Date.now;
    this.touches = new StatementBatcher(
      async (ids) => {
        await touchAPIKeys(opts.db, ids, lastUsedIntervalSeconds);
        return ids.map(() => undefined);
      },
      { maxItems: 500 },
    );
  }

  async authenticate(token: string): Promise<AuthResult> {
    const m = tokenPattern.exec(token);
    if (!m) return { ok: false, reason: 'invalid' };
    const keyId = m[1]!;
    const key = await this.opts.cache.get(keyId);
    if (!key) return { ok: false, reason: 'invalid' };
    const given = hashSecret(m[2]!);
    if (given.length !== key.hashedSecret.length || !timingSafeEqual(given, key.hashedSecret)) return { ok: false, reason: 'invalid' };
    const now = this.now();
    if (key.expiresAt.getTime() <= now) return { ok: false, reason: 'expired' };
    if (key.user.suspendedAt) return { ok: false, reason: 'suspended' };
    this.touch(keyId, key.lastUsedAt, now);
    return { ok: true, user: key.user, keyId, expiresAt: key.expiresAt };
  }

  private touch(keyId: string, lastUsedAt: Date | null, now: number): void {
    const last = Math.max(this.touched.get(keyId) ?? 0, lastUsedAt?.getTime() ?? 0);
    if (now - last < lastUsedIntervalSeconds * 1000) return;
    this.touched.delete(keyId);
    this.touched.set(keyId, now);
    if (this.touched.size > 10_000) this.touched.delete(this.touched.keys().next().value!);
    this.touches.submit(keyId).catch((err: unknown) => this.opts.logger.debug({ err, keyId }, 'auth: recording a key use failed'));
  }
}

export interface UserAdminOptions {
  db: Database;
  publisher: Publisher;
  /** This replica's cache, dropped before the answer so the next request here is refused even before the notice. */
  cache?: Pick<APIKeyCache, 'invalidate'>;
}

/** What changes users and keys; every revocation reaches each replica's key cache and open sockets. */
export class UserAdmin {
  constructor(private readonly opts: UserAdminOptions) {}

  async createUser(username: string, opts: Omit<CreateUserOptions, 'token'>): Promise<User> {
    return (await createUser(this.opts.db, username, opts)).user;
  }

  findUser(ref: string): Promise<User> {
    return findUser(this.opts.db, ref);
  }

  listUsers(): Promise<User[]> {
    return listUsers(this.opts.db);
  }

  listTokens(user: User): Promise<APIKey[]> {
    return listAPIKeysByUser(this.opts.db, user.id);
  }

  async createToken(user: User, opts: TokenOptions): Promise<{ key: APIKey; token: string }> {
    return createAPIKey(this.opts.db, user.id, opts);
  }

  async revokeToken(user: User, keyId: string): Promise<void> {
    if (!(await deleteAPIKey(this.opts.db, keyId, user.id))) throw new APIKeyNotFoundError(`user ${user.username} has no token ${keyId}`);
    await this.revoked({ keyId });
  }

  async deleteUser(user: User): Promise<void> {
    if (!(await deleteUser(this.opts.db, user.id))) throw new UserNotFoundError(`no user "${user.username}"`);
    await this.revoked({ userId: user.id });
  }

  async setSuspended(user: User, suspended: boolean): Promise<User> {
    const after = await setUserSuspended(this.opts.db, user.id, suspended);
    if (!after) throw new UserNotFoundError(`no user "${user.username}"`);
    // Either way: cached entries hold the user as it was.
    await this.revoked({ userId: user.id });
    return after;
  }

  private async revoked(r: Exclude<Revocation, 'all'>): Promise<void> {
    this.opts.cache?.invalidate(r);
    await this.opts.publisher.publish(authInvalidateChannel, revocationPayload(r));
  }
}
