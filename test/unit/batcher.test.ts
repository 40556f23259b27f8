import { describe, expect, it } from 'vitest';

import { DatabaseUnavailableError } from '../../src/daemon/postgres/errors.js';
import { StatementBatcher } from '../../src/daemon/postgres/batcher.js';

/** A statement the test finishes by hand: each call waits until `release()`. */
function fakeStatement(fail?: (items: number[]) => Error | undefined) {
  const calls: number[][] = [];
  const gates: Array<() => void> = [];
  const run = async (items: number[]) => {
    calls.push(items);
    await new Promise<void>((r) => gates.push(r));
    const err = fail?.(items);
    if (err) throw err;
    return items.map((i) => i * 10);
  };
  const release = async () => {
    while (gates.length === 0) await new Promise((r) => setImmediate(r));
    gates.shift()!();
  };
  return { calls, run, release };
}

describe('StatementBatcher', () => {
  it('sends what arrives in one turn of the event loop together, and what arrives during a statement in the next one', async () => {
    const st = fakeStatement();
    const gc = new StatementBatcher(st.run, { maxItems: 100 });
    const first = [gc.submit(1), gc.submit(2)];
    await st.release();
    const second = [gc.submit(3), gc.submit(4), gc.submit(5)];
    expect(await Promise.all(first)).toEqual([10, 20]);
    await st.release();
    expect(await Promise.all(second)).toEqual([30, 40, 50]);
    expect(st.calls).toEqual([[1, 2], [3, 4, 5]]);
  });

  it('splits at maxItems and at maxBytes; a single item larger than maxBytes goes alone', async () => {
    const st = fakeStatement();
    const gc = new StatementBatcher(st.run, { maxItems: 2, maxBytes: 10, sizeOf: (i) => i });
    const all = Promise.all([1, 2, 3, 4, 20, 5].map((i) => gc.submit(i)));
    for (let n = 0; n < 4; n++) await st.release();
    await all;
    expect(st.calls).toEqual([[1, 2], [3, 4], [20], [5]]);
  });

  it('a statement error on a healthy connection is retried item by item: only the bad item fails', async () => {
    const bad = new Error('violates foreign key constraint');
    const st = fakeStatement((items) => (items.includes(2) ? bad : undefined));
    const gc = new StatementBatcher(st.run, { maxItems: 100 });
    const results = Promise.allSettled([1, 2, 3].map((i) => gc.submit(i)));
    for (let n = 0; n < 4; n++) await st.release();
    expect(await results).toEqual([
      { status: 'fulfilled', value: 10 },
      { status: 'rejected', reason: bad },
      { status: 'fulfilled', value: 30 },
    ]);
    expect(st.calls).toEqual([[1, 2, 3], [1], [2], [3]]);
  });

  it('a connection error fails the whole batch at once, for its callers to retry', async () => {
    const down = new DatabaseUnavailableError('the database is unavailable');
    const st = fakeStatement(() => down);
    const gc = new StatementBatcher(st.run, { maxItems: 100 });
    const results = Promise.allSettled([1, 2].map((i) => gc.submit(i)));
    await st.release();
    expect((await results).map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(st.calls).toEqual([[1, 2]]);
  });
});
