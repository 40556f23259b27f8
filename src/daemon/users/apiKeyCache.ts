import type { Cancel, Subscriber } from '../pubsub/pubsub.js';
import type { APIKeyWithUser } from '../store/apiKeys.js';

/** Published by whatever revokes a key, or deletes or suspends a user, on any replica (also the CLI). */
export const authInvalidateChannel = 'auth:invalidate';

/** What stopped being valid: one key, or every key of a user. `all` means "revocations may have been lost". */
export type Revocation = { keyId: string } | { userId: string } | 'all';

export function parseRevocation(payload: Buffer): Revocation | undefined {
  try {
    const r = JSON.parse(payload.toString()) as { key_id?: unknown; user_id?: unknown };
    if (typeof r.key_id === 'string') return { keyId: r.key_id };
    if (typeof r.user_id === 'string') return { userId: r.user_id };
  } catch {
    // Not ours: nothing to drop.
  }
  return undefined;
}

export const revocationPayload = (r: Exclude<Revocation, 'all'>): string => JSON.stringify('keyId' in r ? { key_id: r.keyId } : { user_id: r.userId });

export interface APIKeyCacheOptions {
  fetch: (keyId: string) => Promise<APIKeyWithUser | undefined>;
  /** Keys kept; the least recently used goes first past it. Default 10,000. */
  maxEntries?: number;
  /** Every lookup reads the database (as before the cache; scaletest comparison). */
  disabled?: boolean;
}

/**
 * API keys with their users, so an authenticated request costs no query. There is no TTL: an entry is dropped when
 * its key is revoked or its user deleted or suspended, on every replica through `auth:invalidate`, and everything is
 * dropped when the pubsub may have lost messages. Expiry is checked by the caller against the cached `expires_at`.
 * A global generation keeps a fetch that raced an invalidation from storing what it read.
 */
export class APIKeyCache {
  private readonly entries = new Map<string, APIKeyWithUser>();
  private readonly maxEntries: number;
  private generation = 0;
  private cancel?: Cancel;

  constructor(private readonly opts: APIKeyCacheOptions) {
    this.maxEntries = opts.maxEntries ?? 10_000;
  }

  /** Listens for revocations from every replica; `onRevoked` hears each one after the cache dropped it. */
  async start(subscriber: Subscriber, onRevoked: (r: Revocation) => void): Promise<void> {
    this.cancel = await subscriber.subscribeWithErr(authInvalidateChannel, (payload, err) => {
      const r = err || !payload ? 'all' : parseRevocation(payload);
      if (!r) return;
      this.invalidate(r);
      onRevoked(r);
    });
  }

  async close(): Promise<void> {
    await this.cancel?.();
  }

  get size(): number {
    return this.entries.size;
  }

  async get(keyId: string): Promise<APIKeyWithUser | undefined> {
    if (this.opts.disabled) return this.opts.fetch(keyId);
    const hit = this.entries.get(keyId);
    if (hit) {
      // Re-inserted: a Map iterates in insertion order, so the first key is the least recently used.
      this.entries.delete(keyId);
      this.entries.set(keyId, hit);
      return hit;
    }
    const generation = this.generation;
    const key = await this.opts.fetch(keyId);
    if (key && generation === this.generation) {
      this.entries.set(keyId, key);
      if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    }
    return key;
  }

  invalidate(r: Revocation): void {
    this.generation++;
    if (r === 'all') this.entries.clear();
    else if ('keyId' in r) this.entries.delete(r.keyId);
    else for (const [id, key] of this.entries) if (key.user.id === r.userId) this.entries.delete(id);
  }
}
