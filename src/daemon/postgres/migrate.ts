import { readdir, readFile } from 'node:fs/promises';

import pg from 'pg';

const migrationsDir = new URL('./migrations/', import.meta.url);

// Any fixed 64-bit key works; this one is "coderlite" in ASCII, so it is recognisable in pg_locks.
const advisoryLockKey = '7165613244451873893';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export async function loadMigrations(): Promise<Migration[]> {
  const files = (await readdir(migrationsDir)).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => ({
      version: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      sql: await readFile(new URL(file, migrationsDir), 'utf8'),
    })),
  );
}

/**
 * Applies every migration not yet recorded, each in its own transaction. A session advisory lock serialises
 * replicas that start together: the second waits, then finds nothing left to do.
 * Runs on a dedicated connection, not the pool: migration files hold several statements, which cannot be prepared.
 */
export async function migrate(config: pg.ClientConfig): Promise<{ applied: string[] }> {
  const migrations = await loadMigrations();
  const client = new pg.Client({ ...config, application_name: 'coder-lite migrate' });
  client.on('error', () => undefined);
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [advisoryLockKey]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      try {
        await client.query('BEGIN');
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new Error(`migration ${m.version}_${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(`${m.version}_${m.name}`);
    }
    await client.query('SELECT pg_advisory_unlock($1)', [advisoryLockKey]);
  } finally {
    await client.end().catch(() => undefined);
  }
  return { applied };
}
