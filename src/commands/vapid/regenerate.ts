import { createInterface } from 'node:readline/promises';

import { Flags } from '@oclif/core';

import { BaseCommand, databaseFlags } from '../../cli/base.js';
import { openCommandDatabase } from '../../cli/database.js';
import { createLogger } from '../../daemon/observability/logger.js';
import { regenerateVapidKeys, vapidStatus } from '../../daemon/webpush/vapid.js';

export default class VapidRegenerate extends BaseCommand {
  static override description =
    'Rotate the Web Push VAPID key pair. Every push subscription is bound to the old key, so all of them are deleted in the same transaction; users subscribe again from the web console. Works with no daemon running; running daemons pick the new key up at once.';

  static override examples = ['<%= config.bin %> vapid regenerate', '<%= config.bin %> vapid regenerate --yes --postgres-url postgres://coder@db/coder'];

  static override flags = {
    ...databaseFlags,
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation.' }),
  };

  static override enableJsonFlag = true;

  async run(): Promise<{ public_key: string; deleted_subscriptions: number }> {
    const { flags } = await this.parse(VapidRegenerate);
    const logger = createLogger({ level: flags['log-level'] as 'info', format: 'json' });
    const { db, close } = await openCommandDatabase({ postgresUrl: flags['postgres-url'], dataDir: flags['data-dir'], logger, startEmbeddedIfStopped: true });
    try {
      const status = await vapidStatus(db);
      process.stderr.write(
        `This replaces the VAPID key pair${status.publicKey ? ` (public key ${status.publicKey.slice(0, 16)}…)` : ''} and deletes all ${status.subscriptions} push subscription(s).\n`,
      );
      if (!flags.yes) {
        if (!process.stdin.isTTY) this.error('refusing to rotate without confirmation: stdin is not a terminal; pass --yes', { exit: 1 });
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question('Continue? (y/N) ');
        rl.close();
        if (!/^y(es)?$/i.test(answer.trim())) this.error('aborted; nothing changed', { exit: 1 });
      }
      const { publicKey, deleted } = await regenerateVapidKeys(db);
      if (!this.jsonEnabled()) {
        process.stderr.write(`Deleted ${deleted} push subscription(s). New public key:\n`);
        process.stdout.write(`${publicKey}\n`);
      }
      return { public_key: publicKey, deleted_subscriptions: deleted };
    } finally {
      await close();
    }
  }
}
