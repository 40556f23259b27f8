import { afterAll } from 'vitest';

import { createStoppablePostgres, type StoppablePostgres } from './stoppablePostgres.js';

/** A PostgreSQL 15 cluster the test can stop and start, removed after the file's tests. */
export async function startStoppablePostgres(): Promise<StoppablePostgres> {
  const pg = await createStoppablePostgres();
  afterAll(() => pg.remove());
  return pg;
}
