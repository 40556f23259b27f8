import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';
import type { TestProject } from 'vitest/node';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import { startEmbeddedPostgres } from '../../src/daemon/postgres/embedded.js';
import { migrate } from '../../src/daemon/postgres/migrate.js';
import { startNatsServer } from './nats.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A superuser URL of the run's PostgreSQL; test files make their own databases from it. */
    pgAdminUrl: string;
    /** A migrated database that test databases are copied from (CREATE DATABASE … TEMPLATE). */
    pgTemplate: string;
    /** The run's nats-server; test files keep apart by subject prefix. */
    natsUrl: string;
  }
}

export const templateName = 'coderlite_test_template';

/**
 * One PostgreSQL for the whole run (CODER_LITE_TEST_PG_URL, or an embedded throwaway cluster) and one nats-server
 * (CODER_LITE_TEST_NATS_URL, or Debian's nats-server on a free loopback port).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let adminUrl = process.env.CODER_LITE_TEST_PG_URL;
  let teardown = async () => {};
  if (!adminUrl) {
    // As root, postgres runs as the postgres user: the mkdtemp folder (0700) must be traversable.
    const dir = await mkdtemp(join(tmpdir(), 'coder-lite-test-'));
    await chmod(dir, 0o755);
    const embedded = await startEmbeddedPostgres({
      dataDir: dir,
      logger: silentLogger(),
      initdbFlags: ['--no-sync'],
      // Durability is worthless for a throwaway cluster; many test files run at once, each with its own pools.
      settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '400' },
    });
    adminUrl = embedded.url;
    teardown = async () => {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }

  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${templateName} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${templateName}`);
  } finally {
    await admin.end();
  }
  const templateUrl = new URL(adminUrl);
  templateUrl.pathname = `/${templateName}`;
  await migrate({ connectionString: templateUrl.toString() });

  let natsUrl = process.env.CODER_LITE_TEST_NATS_URL;
  if (!natsUrl) {
    const nats = await startNatsServer().catch(async (err: unknown) => {
      await teardown();
      throw err;
    });
    natsUrl = nats.url;
    const stopPg = teardown;
    teardown = async () => {
      await nats.dispose();
      await stopPg();
    };
  }

  project.provide('pgAdminUrl', adminUrl);
  project.provide('pgTemplate', templateName);
  project.provide('natsUrl', natsUrl);
  return teardown;
}
