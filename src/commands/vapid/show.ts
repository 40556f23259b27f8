import { BaseCommand, databaseFlags } from '../../cli/base.js';
import { openCommandDatabase } from '../../cli/database.js';
import { createLogger } from '../../daemon/observability/logger.js';
import { vapidStatus } from '../../daemon/webpush/vapid.js';

export default class VapidShow extends BaseCommand {
  static override description = 'Print the Web Push VAPID public key (browsers subscribe with it).';

  static override examples = ['<%= config.bin %> vapid show', '<%= config.bin %> vapid show --json'];

  static override flags = {
    ...databaseFlags,
  };

  static override enableJsonFlag = true;

  async run(): Promise<{ public_key: string; subscriptions: number }> {
    const { flags } = await this.parse(VapidShow);
    const logger = createLogger({ level: flags['log-level'] as 'info', format: 'json' });
    const { db, close } = await openCommandDatabase({ postgresUrl: flags['postgres-url'], dataDir: flags['data-dir'], logger, startEmbeddedIfStopped: true });
    try {
      const { publicKey, subscriptions } = await vapidStatus(db);
      if (!publicKey) this.error('no VAPID key pair yet: `coder-lite server` creates one on its first start', { exit: 1 });
      if (!this.jsonEnabled()) process.stdout.write(`${publicKey}\n`);
      return { public_key: publicKey, subscriptions };
    } finally {
      await close();
    }
  }
}
