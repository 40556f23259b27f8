import { randomBytes } from 'node:crypto';

import pg from 'pg';
import { inject } from 'vitest';

import { createDatabase, type Database } from '../../src/daemon/postgres/pool.js';
import { cleanUp } from './cleanup.js';

export interface TestDatabase {
  /** URL of a fresh, migrated database that only this test file uses. */
  url: string;
  /** Drops the database (also done after the file's tests). */
  drop(): Promise<void>;
}

async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** A fresh migrated database, copied from the run's template; dropped after the calling test (or file's tests). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name} TEMPLATE ${inject('pgTemplate')}`);
  const url = new URL(inject('pgAdminUrl'));
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  const drop = () => (dropped ??= adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  cleanUp(drop);
  return { url: url.toString(), drop };
}

/** A fresh database and an instrumented pool on it, closed after the file's tests. */
export async function createTestPool(max = 10): Promise<{ url: string; db: Database }> {
  const { url } = await createTestDatabase();
  const db = createDatabase({ connectionString: url, max });
  cleanUp(() => db.close());
  return { url, db };
}
