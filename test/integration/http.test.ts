import pg from 'pg';
import { describe, expect, it } from 'vitest';

import { version } from '../../src/daemon/config.js';
import { createTestDatabase } from '../helpers/db.js';
import { startTestDaemon } from '../helpers/daemon.js';

describe('HTTP basics', async () => {
  const daemon = await startTestDaemon();

  it('reports health and build info', async () => {
    const health = await fetch(`${daemon.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const info = await fetch(`${daemon.url}/api/v2/buildinfo`);
    expect(await info.json()).toMatchObject({ version });
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await fetch(`${daemon.url}/api/v2/nope?x=1`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toEqual({ message: 'no route for GET /api/v2/nope' });
  });

  it('answers malformed JSON with a JSON 400', async () => {
    const res = await fetch(`${daemon.url}/api/v2/users/me`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"broken": ',
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(await res.json()).toHaveProperty('message');
  });

  it('reports 503 when the database stops answering', async () => {
    const { url, drop } = await createTestDatabase();
    const lonely = await startTestDaemon({ postgresUrl: url });
    expect((await fetch(`${lonely.url}/healthz`)).status).toBe(200);
    await drop();
    const res = await fetch(`${lonely.url}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'unavailable' });
  });
});

describe('migrations', () => {
  it('two replicas starting together on an empty database both come up', async () => {
    const { url } = await createTestDatabase();
    // An empty database, not the migrated template, so both really race to migrate.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    await client.end();
    const [a, b] = await Promise.all([startTestDaemon({ postgresUrl: url }), startTestDaemon({ postgresUrl: url })]);
    expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
    const { rows } = await a.db.query<{ n: string }>({ name: 'testCountMigrations', text: 'SELECT count(*) AS n FROM schema_migrations' });
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);
    // Re-running is a no-op.
    const c = await startTestDaemon({ postgresUrl: url });
    const again = await c.db.query<{ n: string }>({ name: 'testCountMigrations', text: 'SELECT count(*) AS n FROM schema_migrations' });
    expect(again.rows[0]!.n).toBe(rows[0]!.n);
  });
});
