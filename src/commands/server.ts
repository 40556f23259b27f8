import { Flags } from '@oclif/core';

import { BaseCommand, databaseFlags } from '../cli/base.js';
import { ConfigError, parseHttpAddress, parsePostgresUrl, positiveInt } from '../daemon/config.js';
import { startDaemon } from '../daemon/index.js';
import { createLogger, type LogFormat } from '../daemon/observability/logger.js';
import { defaultDataDir } from '../daemon/postgres/embedded.js';

export default class Server extends BaseCommand {
  static override description =
    'Run the coder-lite daemon: HTTP API, chat streams, pubsub and Web Push. Without --postgres-url it runs an embedded PostgreSQL in --data-dir.';

  static override examples = [
    '<%= config.bin %> server',
    '<%= config.bin %> server --http-address 0.0.0.0:8080 --postgres-url postgres://coder:secret@db:5432/coder',
    '<%= config.bin %> server --log-format pretty --log-level debug',
  ];

  static override flags = {
    ...databaseFlags,
    'http-address': Flags.string({ description: 'Address the HTTP API listens on.', default: '127.0.0.1:3000', env: 'CODER_LITE_HTTP_ADDRESS' }),
    'postgres-pool-max': Flags.integer({ description: 'Maximum connections in the database pool.', default: 10, env: 'CODER_LITE_POSTGRES_POOL_MAX' }),
    'log-format': Flags.string({ description: 'Log format on stderr.', options: ['json', 'pretty'], default: 'json', env: 'CODER_LITE_LOG_FORMAT' }),
    pubsub: Flags.string({
      description: 'Pubsub backend: postgres (LISTEN/NOTIFY, works across replicas) or memory (a single process only).',
      options: ['postgres', 'memory'],
      default: 'postgres',
      env: 'CODER_LITE_PUBSUB',
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Server);
    try {
      parseHttpAddress(flags['http-address']);
      if (flags['postgres-url']) parsePostgresUrl(flags['postgres-url']);
      positiveInt('--postgres-pool-max', flags['postgres-pool-max'], 1000);
    } catch (err) {
      if (err instanceof ConfigError) this.usageError(err.message);
      throw err;
    }
    const logger = createLogger({ level: flags['log-level'] as 'info', format: flags['log-format'] as LogFormat });
    const daemon = await startDaemon({
      logger,
      httpAddress: flags['http-address'],
      postgresUrl: flags['postgres-url'],
      dataDir: flags['data-dir'] ?? defaultDataDir(),
      postgresPoolMax: flags['postgres-pool-max'],
      pubsub: flags.pubsub as 'postgres' | 'memory',
    });

    const outcome = await new Promise<{ signal: string } | { fatal: Error }>((resolve) => {
      const onSignal = (signal: string) => resolve({ signal });
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      void daemon.fatal.then((fatal) => resolve({ fatal }));
    });
    // A second signal while draining means "now".
    const force = () => {
      logger.warn('second signal: exiting without finishing shutdown');
      logger.flush();
      process.exit(1);
    };
    process.once('SIGINT', force);
    process.once('SIGTERM', force);

    if ('fatal' in outcome) logger.fatal({ err: outcome.fatal }, 'fatal daemon failure; shutting down');
    else logger.info({ signal: outcome.signal }, 'shutting down');
    await daemon.close();
    logger.info('shutdown complete');
    logger.flush();
    this.exit('fatal' in outcome ? 1 : 0);
  }
}
