import { expect } from 'vitest';

import { ErrDroppedMessages } from '../../src/daemon/pubsub/pubsub.js';

/**
 * What a subscriber got across a reconnect, numbers and one drop signal: in order on both sides of the signal, and
 * nothing before it newer than what came after. What the outage took may be unknown; nothing is reordered.
 */
export function expectOrderedAroundDrop(got: ReadonlyArray<number | Error>): { before: number[]; after: number[] } {
  const dropAt = got.findIndex((g) => g instanceof ErrDroppedMessages);
  expect(dropAt).toBeGreaterThanOrEqual(0);
  const before = got.slice(0, dropAt) as number[];
  const after = got.slice(dropAt + 1);
  expect(after.every((g) => typeof g === 'number')).toBe(true);
  const increasing = (xs: readonly number[]) => xs.every((x, i) => i === 0 || x > xs[i - 1]!);
  expect(increasing(before)).toBe(true);
  expect(increasing(after as number[])).toBe(true);
  return { before, after: after as number[] };
}
