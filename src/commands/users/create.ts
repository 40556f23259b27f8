import { Args, Flags } from '@oclif/core';

import { BaseCommand, databaseFlags } from '../../cli/base.js';
import { openCommandDatabase } from '../../cli/database.js';
import { lifetimeFlag } from '../../cli/flags.js';
import { createLogger } from '../../daemon/observability/logger.js';
import { createUserWithToken, UserInputError } from '../../daemon/users/service.js';

export default class UsersCreate extends BaseCommand {
  static override description =
    'Create a user and print a new API token for it (shown once; only its hash is stored). The first user of an empty database is an admin; --admin makes another one.';

  static override examples = [
    '<%= config.bin %> users create alice --email alice@example.com',
    'TOKEN=$(<%= config.bin %> users create bob)',
    '<%= config.bin %> users create carol --json',
    '<%= config.bin %> users create ops --admin --lifetime 7d',
  ];

  static override args = { name: Args.string({ description: 'Username.', required: true }) };

  static override flags = {
    ...databaseFlags,
    email: Flags.string({ description: 'E-mail address.' }),
    admin: Flags.boolean({ description: 'Make the user an admin (manages users, tokens, models and providers).' }),
    lifetime: lifetimeFlag({ description: 'Lifetime of the first token: 30d, 12h, 90m (at most 365d). [default: 30d]' }),
  };

  static override enableJsonFlag = true;

  async run(): Promise<{ id: string; username: string; is_admin: boolean; token: string }> {
    const { args, flags } = await this.parse(UsersCreate);
    const logger = createLogger({ level: flags['log-level'] as 'info', format: 'json' });
    const { db, close } = await openCommandDatabase({ postgresUrl: flags['postgres-url'], dataDir: flags['data-dir'], logger });
    try {
      const { user, token } = await createUserWithToken(db, args.name, { email: flags.email, admin: flags.admin, token: { lifetimeSeconds: flags.lifetime } });
      if (!this.jsonEnabled()) {
        process.stderr.write(`Created ${user.isAdmin ? 'admin' : 'user'} ${user.username} (${user.id}). Its API token, shown only this once:\n`);
        process.stdout.write(`${token}\n`);
      }
      return { id: user.id, username: user.username, is_admin: user.isAdmin, token };
    } catch (err) {
      if (err instanceof UserInputError) this.usageError(err.message);
      throw err;
    } finally {
      await close();
    }
  }
}
