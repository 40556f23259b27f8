import { Flags } from '@oclif/core';

import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { lifetimeFlag } from '../../cli/flags.js';
import { tokenJson } from '../../daemon/users/json.js';

export default class TokensCreate extends AdminCommand {
  static override description = 'Create an API token for a user and print it (shown once; only its hash is stored).';

  static override examples = [
    'TOKEN=$(<%= config.bin %> tokens create --user alice --name laptop --lifetime 7d)',
    '<%= config.bin %> tokens create --user ci-bot --name deploy --lifetime 365d --json',
  ];

  static override flags = {
    ...adminFlags,
    user: Flags.string({ description: 'Username or id.', required: true }),
    name: Flags.string({ description: "The token's name, unique per user. [default: token-<id>]" }),
    lifetime: lifetimeFlag({ description: 'How long it works: 30d, 12h, 90m (at most 365d). [default: 30d]' }),
  };

  static override enableJsonFlag = true;

  async run(): Promise<ReturnType<typeof tokenJson> & { token: string }> {
    const { flags } = await this.parse(TokensCreate);
    return this.withAdmin(flags, async ({ users }) => {
      const { key, token } = await users.createToken(await users.findUser(flags.user), { name: flags.name, lifetimeSeconds: flags.lifetime });
      if (!this.jsonEnabled()) {
        process.stderr.write(`Created token ${key.name} (${key.id}), expires ${key.expiresAt.toISOString()}. Shown only this once:\n`);
        process.stdout.write(`${token}\n`);
      }
      return { ...tokenJson(key), token };
    });
  }
}
