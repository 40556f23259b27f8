import { afterAll, onTestFinished } from 'vitest';

/**
 * Runs `fn` after the current test when called inside one, else after the file's tests: vitest silently never runs
 * an `afterAll` registered inside a test body, which left databases, clusters and daemons behind.
 */
export function cleanUp(fn: () => Promise<unknown> | unknown): void {
  try {
    onTestFinished(async () => {
      await fn();
    });
  } catch {
    afterAll(async () => {
      await fn();
    });
  }
}
