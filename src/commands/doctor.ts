import { Flags } from '@oclif/core';

import { BaseCommand, databaseFlags } from '../cli/base.js';
import { resolvePostgresUrl } from '../cli/database.js';
import { ExitCode } from '../cli/exitCodes.js';
import { httpUrlFlag } from '../cli/flags.js';
import { doctorDatabase, doctorServer } from '../daemon/health/doctor.js';
import type { HealthReport } from '../daemon/health/report.js';
import { createLogger } from '../daemon/observability/logger.js';

export default class Doctor extends BaseCommand {
  static override description =
    "Check a deployment's health: the database (reachable, latency), the pubsub (a probe's round trip), PostgreSQL's NOTIFY queue, and with --url the server's pool pressure and recent push failures. Each check has a severity; exits 1 when one is an error.";

  static override examples = [
    '<%= config.bin %> doctor --url https://coder-lite.example.com --token "$TOKEN"',
    '<%= config.bin %> doctor --postgres-url postgres://coder:secret@db:5432/coder',
    '<%= config.bin %> doctor --json | jq .severity',
  ];

  static override flags = {
    ...databaseFlags,
    url: httpUrlFlag({ description: "A running server's URL: print its own report (GET /api/v2/debug/health; needs an admin's token).", env: 'CODER_LITE_URL', exclusive: ['postgres-url'] }),
    token: Flags.string({ description: "An admin's API token, with --url.", env: 'CODER_LITE_SESSION_TOKEN', dependsOn: ['url'] }),
  };

  static override enableJsonFlag = true;

  async run(): Promise<HealthReport> {
    const { flags } = await this.parse(Doctor);
    const logger = createLogger({ level: flags['log-level'] === 'info' ? 'silent' : (flags['log-level'] as 'debug'), format: 'json' });
    let health: HealthReport;
    if (flags.url) {
      if (!flags.token) this.usageError('--url needs --token (or CODER_LITE_SESSION_TOKEN): an admin token');
      health = await doctorServer(flags.url, flags.token);
    } else {
      const { url, stop } = await resolvePostgresUrl({ postgresUrl: flags['postgres-url'], dataDir: flags['data-dir'], logger });
      try {
        health = await doctorDatabase(url, logger);
      } finally {
        await stop?.();
      }
    }
    if (!this.jsonEnabled()) {
      const mark = { ok: '✓', warning: '!', error: '✗' } as const;
      for (const c of health.checks) process.stdout.write(`${mark[c.severity]} ${c.severity.padEnd(7)}  ${c.name.padEnd(12)}  ${c.message}\n`);
      process.stdout.write(`overall: ${health.severity}\n`);
    }
    // The report is data either way; an error in it is the exit status, as `coder-lite doctor` is for scripts too.
    if (health.severity === 'error') {
      if (this.jsonEnabled()) this.logJson(health);
      this.exit(ExitCode.failure);
    }
    return health;
  }
}
