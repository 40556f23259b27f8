import { describe, expect, it } from 'vitest';

import { namedQuery } from '../../src/daemon/postgres/pool.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestPool } from '../helpers/db.js';

const sleepQuery = namedQuery('testSleep', 'SELECT pg_sleep($1)');
const one = namedQuery('testOne', 'SELECT 1 AS one');

describe('instrumented pool', () => {
  it('measures acquire wait when every connection is held', async () => {
    const { db } = await createTestPool(2);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const holders = [0, 1].map(() => db.tx(async () => held));
    await expect.poll(() => db.stats().total).toBe(2);

    const waiter = db.query<{ one: number }>(one);
    await expect.poll(() => db.stats().waiting).toBeGreaterThan(0);
    expect(db.stats().waitCount).toBe(1);
    release();
    await Promise.all(holders);
    expect((await waiter).rows[0]!.one).toBe(1);

    const stats = db.stats();
    expect(stats.waiting).toBe(0);
    expect(stats.peakWaiting).toBeGreaterThanOrEqual(1);
    expect(stats.acquires).toBe(3);
    expect(stats.acquireWait.max).toBeGreaterThan(0);
    expect(stats.waitingSeconds).toBeGreaterThan(0);
    expect(stats.queries).toEqual({ testOne: 1 });
  });

  it('cancels a statement on the server when the caller aborts', async () => {
    const { db } = await createTestPool(1);
    const aborted = db.query(sleepQuery, [30], { signal: AbortSignal.timeout(100) });
    await expect(aborted).rejects.toThrow();
    // The one connection comes back only once the server has really stopped the sleep.
    expect((await db.query<{ one: number }>(one)).rows[0]!.one).toBe(1);
  });

  it('rolls a failed transaction back', async () => {
    const { db } = await createTestPool(1);
    await db.query(namedQuery('testCreate', 'CREATE TABLE t (v int)'));
    await expect(
      db.tx(async (tx) => {
        await tx.query(namedQuery('testInsert', 'INSERT INTO t VALUES (1)'));
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const { rows } = await db.query<{ n: string }>(namedQuery('testCount', 'SELECT count(*) AS n FROM t'));
    expect(rows[0]!.n).toBe('0');
  });
});

describe('/metrics', async () => {
  const daemon = await startTestDaemon({ postgresPoolMax: 2 });

  it('shows queries by name and pool figures after traffic', async () => {
    const { token } = await createTestUser(daemon);
    for (let i = 0; i < 3; i++) await fetch(`${daemon.url}/api/v2/users/me`, { headers: { 'Coder-Session-Token': token } });
    const text = await (await fetch(`${daemon.url}/metrics`)).text();
    // The key is read once, then served from the key cache.
    expect(text).toMatch(/coderlite_db_queries_total\{query="getAPIKeyWithUser"\} 1/);
    expect(text).toMatch(/coderlite_db_query_duration_seconds_count\{query="getAPIKeyWithUser"\} 1/);
    expect(text).toMatch(/coderlite_db_pool_acquire_wait_seconds_count \d+/);
    expect(text).toMatch(/coderlite_db_pool_total_connections \d/);
    expect(text).toMatch(/coderlite_db_pool_wait_count_total \d/);
    expect(text).toMatch(/process_cpu_user_seconds_total/);
  });
});
