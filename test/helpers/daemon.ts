import { startDaemon, type Daemon, type DaemonConfig, type DaemonSeams } from '../../src/daemon/index.js';
import { silentLogger } from '../../src/daemon/observability/logger.js';
import { createUserWithToken } from '../../src/daemon/users/service.js';
import { cleanUp } from './cleanup.js';
import { createTestDatabase } from './db.js';

/** A daemon on a fresh database of its own (or `postgresUrl`), on a free port; closed after the calling test (or file's tests). */
export async function startTestDaemon(overrides: Partial<DaemonConfig> = {}, seams: DaemonSeams = {}): Promise<Daemon> {
  const postgresUrl = overrides.postgresUrl ?? (await createTestDatabase()).url;
  const daemon = await startDaemon({
    logger: silentLogger(),
    httpAddress: '127.0.0.1:0',
    dataDir: '/nonexistent-unused',
    postgresPoolMax: 10,
    ...overrides,
    postgresUrl,
  }, seams);
  cleanUp(() => daemon.close());
  return daemon;
}

/** A new user with a token, straight through the service. */
export async function createTestUser(daemon: Pick<Daemon, 'db'>, username = `u${Math.random().toString(36).slice(2, 10)}`) {
  const { user, token } = await createUserWithToken(daemon.db, username, undefined);
  return { user, token };
}

