import { availableParallelism } from 'node:os';

/** The Web Push part of the daemon's config. */
export interface WebpushConfig {
  /** Off: the API answers 404 and pushes are dropped. Default on. */
  enabled?: boolean;
  /** The VAPID `sub`: an https: URL, a mailto: or a bare e-mail. Default derived from the access URL. */
  subject?: string;
  /** Dev and tests only: accept http and loopback/private endpoints. */
  allowInsecureEndpoints?: boolean;
  /** Re-read subscriptions on every push, as Coder does (scaletest comparison). */
  subscriptionCacheDisabled?: boolean;
  /** Coder-like push after a turn: re-read the chat, its last message and the model config (scaletest comparison). */
  uncachedTurnPush?: boolean;
  /** Sends in flight at once. Default 32. */
  concurrency?: number;
  /** How long a push service keeps an undelivered notification (the `TTL` header). Default 48 h. */
  ttlSeconds?: number;
  /** Per send. Default 10 s. */
  timeoutMs?: number;
  /** Worker threads that encrypt payloads; 0 (the default) encrypts on the main thread. */
  encryptionThreads?: number;
}

/**
 * What `server` and the in-process scaletest use when not told: one thread, given a second core. A push's ECDH is
 * the largest piece of a turn on the main thread, the loop every request waits on; on 2 cores one thread gave
 * 1.11–1.29× the turns/s in alternating 5000 × 10 runs (README).
 */
export const defaultEncryptionThreads = availableParallelism() > 1 ? 1 : 0;
