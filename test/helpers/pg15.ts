import { cleanUp } from './cleanup.js';
import { createStoppablePostgres, type StoppablePostgres } from './stoppablePostgres.js';

/** A PostgreSQL 15 cluster the test can stop and start, removed after the calling test (or file's tests). */
export async function startStoppablePostgres(): Promise<StoppablePostgres> {
  const pg = await createStoppablePostgres();
  cleanUp(() => pg.remove());
  return pg;
}
