import { defaultDataDir, embeddedClusterExists, runningEmbeddedUrl, startEmbeddedPostgres } from '../daemon/postgres/embedded.js';
import { migrate } from '../daemon/postgres/migrate.js';
import { createDatabase, describeConnection, type Database } from '../daemon/postgres/pool.js';
import type { Logger } from '../daemon/observability/logger.js';

export interface CommandDatabaseOptions {
  postgresUrl?: string;
  dataDir?: string;
  logger: Logger;
  /** With no server running, start the data dir's embedded cluster for the command's duration (vapid regenerate). */
  startEmbeddedIfStopped?: boolean;
}

export interface CommandDatabase {
  db: Database;
  url: string;
  close(): Promise<void>;
}

/** Resolves the database a command talks to: --postgres-url, else the embedded cluster a running server recorded. */
export async function resolvePostgresUrl(opts: CommandDatabaseOptions): Promise<{ url: string; stop?: () => Promise<void> }> {
  if (opts.postgresUrl) return { url: opts.postgresUrl };
  const dataDir = opts.dataDir ?? defaultDataDir();
  const running = await runningEmbeddedUrl(dataDir);
  if (running) return { url: running };
  if (opts.startEmbeddedIfStopped && embeddedClusterExists(dataDir)) {
    const embedded = await startEmbeddedPostgres({ dataDir, logger: opts.logger });
    return { url: embedded.url, stop: () => embedded.stop() };
  }
  throw new Error(
    `no database to use: pass --postgres-url (or set CODER_LITE_POSTGRES_URL), or start \`coder-lite server\` with --data-dir ${dataDir} first`,
  );
}

export async function openCommandDatabase(opts: CommandDatabaseOptions): Promise<CommandDatabase> {
  const { url, stop } = await resolvePostgresUrl(opts);
  const db = createDatabase({ connectionString: url, max: 2, applicationName: 'coder-lite cli' });
  const close = async () => {
    await db.close();
    await stop?.();
  };
  try {
    await migrate(db.connectionConfig);
  } catch (err) {
    await close();
    throw new Error(`cannot use PostgreSQL at ${describeConnection(db.connectionConfig)}`, { cause: err });
  }
  return { db, url, close };
}
