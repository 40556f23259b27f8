import { setTimeout as sleep } from 'node:timers/promises';

import { isConnectionError } from './errors.js';

export interface RetryOptions {
  /** Stops the retries: the last error is thrown (or the abort reason, when nothing was tried yet). */
  signal?: AbortSignal;
  /** First delay; doubles up to `maxDelayMs`, each with ±50% jitter so replicas do not retry in step. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Told before each wait. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs `fn` until it succeeds or fails for a reason other than the database being unavailable (those are thrown
 * at once). For writes whose loss would strand state, such as a turn's end: they must land once the database is back.
 */
export async function retryWhileUnavailable<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const base = opts.baseDelayMs ?? 100;
  const max = opts.maxDelayMs ?? 2000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isConnectionError(err) || opts.signal?.aborted) throw err;
      const delayMs = Math.round(Math.min(max, base * 2 ** (attempt - 1)) * (0.5 + Math.random()));
      opts.onRetry?.(err, attempt, delayMs);
      try {
        await sleep(delayMs, undefined, { signal: opts.signal });
      } catch {
        throw err;
      }
    }
  }
}
