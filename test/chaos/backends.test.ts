import pg from 'pg';
import { describe, expect, it } from 'vitest';

import { DatabaseUnavailableError } from '../../src/daemon/postgres/errors.js';
import { namedQuery } from '../../src/daemon/postgres/pool.js';
import { chatApi, openStream } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase } from '../helpers/db.js';

const sleepQ = namedQuery('chaosSleep', 'SELECT pg_sleep(30)');
const oneQ = namedQuery('chaosOne', 'SELECT 1 AS one');

/** Terminates every backend of the database (as `pg_ctl restart` or an operator's pg_terminate_backend would). */
async function terminateBackends(url: string): Promise<number> {
  const target = new URL(url);
  const dbName = target.pathname.slice(1);
  target.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: target.toString() });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ n: string }>('SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [dbName]);
    return Number(rows[0]!.n);
  } finally {
    await admin.end();
  }
}

/** Resolves once the database shows `n` backends of ours running `query` (so a termination hits them mid-flight). */
async function waitForActive(url: string, query: string, n = 1): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await expect
      .poll(async () => Number((await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE query = $1 AND state = 'active'", [query])).rows[0]!.n), { timeout: 10_000, interval: 10 })
      .toBeGreaterThanOrEqual(n);
  } finally {
    await admin.end();
  }
}

describe('a replica whose backends are terminated', async () => {
  const { url } = await createTestDatabase();
  // One connection: a waiter is handed whatever the last holder released.
  const daemon = await startTestDaemon({ postgresUrl: url, postgresPoolMax: 1, chat: { fakeTokens: 4, fakeTokenDelayMs: 5 } });
  const user = await createTestUser(daemon);
  const api = chatApi(daemon.url, user.token);
  /** The next request works, perhaps after 503s while the pool notices its connections are gone; never a 500. */
  const nextRequestWorks = async () => {
    const statuses: number[] = [];
    await expect
      .poll(async () => {
        const { status } = await api.call('GET', '/api/v2/users/me');
        statuses.push(status);
        return status;
      }, { timeout: 10_000, interval: 20 })
      .toBe(200);
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
  };

  it('while idle: the pool drops the dead connections and the next request works', async () => {
    await nextRequestWorks();
    expect(await terminateBackends(url)).toBeGreaterThan(0);
    await nextRequestWorks();
  });

  it('mid-query: the query rejects with DatabaseUnavailableError, and the connection is not reused', async () => {
    // Handlers go on at once: the rejection comes while the test is still waiting for other things.
    const sleeping = daemon.db.query(sleepQ).then(() => undefined, (e: unknown) => e);
    await waitForActive(url, sleepQ.text);
    await terminateBackends(url);
    const err = await sleeping;
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error).cause).toBeInstanceOf(Error);
    expect((await daemon.db.query<{ one: number }>(oneQ)).rows[0]!.one).toBe(1);
  });

  it('while a caller waits for the only connection: the waiter gets a fresh one, not the dead one', async () => {
    const holder = daemon.db.query(sleepQ).catch((e: unknown) => e);
    await waitForActive(url, sleepQ.text);
    const waiter = daemon.db.query<{ one: number }>(oneQ);
    expect(daemon.db.stats().waiting).toBe(1);
    await terminateBackends(url);
    expect(await holder).toBeInstanceOf(DatabaseUnavailableError);
    expect((await waiter).rows[0]!.one).toBe(1);
  });

  it('mid-transaction: the transaction rejects with DatabaseUnavailableError and nothing of it commits', async () => {
    const tx = daemon.db.tx(async (q) => {
      await q.query(namedQuery('chaosTxInsert', "INSERT INTO site_configs (key, value) VALUES ('chaos', 'x')"));
      await q.query(sleepQ);
    }).then(() => undefined, (e: unknown) => e);
    await waitForActive(url, sleepQ.text);
    await terminateBackends(url);
    expect(await tx).toBeInstanceOf(DatabaseUnavailableError);
    expect((await daemon.db.query(namedQuery('chaosTxRead', "SELECT 1 FROM site_configs WHERE key = 'chaos'"))).rowCount).toBe(0);
  });

  it('mid-turn, LISTEN included: the turn ends, the stream hears it, and the next turn streams too', async () => {
    const chat = await api.createChat('before');
    const s = await openStream(daemon.url, user.token, chat.id);
    await s.waitFor((e) => e.type === 'status' && e.status === 'waiting');
    expect((await api.send(chat.id, 'during')).status).toBe(201);
    await terminateBackends(url);
    await s.waitFor((e) => e.type === 'message' && e.message.role === 'assistant' && e.message.id > 2);
    await s.waitFor((e, all) => e.type === 'status' && e.status === 'waiting' && all.indexOf(e) > all.findIndex((x) => x.type === 'message' && x.message.id > 2));
    await nextRequestWorks();
    s.close();
  });
});
