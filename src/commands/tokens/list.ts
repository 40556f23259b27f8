import { Flags } from '@oclif/core';

import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { tokenJson } from '../../daemon/users/json.js';

export default class TokensList extends AdminCommand {
  static override description = "List a user's API tokens: id, name, created, last used (recorded at most once a minute), expires.";

  static override examples = ['<%= config.bin %> tokens list --user alice', '<%= config.bin %> tokens list --user alice --json'];

  static override flags = { ...adminFlags, user: Flags.string({ description: 'Username or id.', required: true }) };

  static override enableJsonFlag = true;

  async run(): Promise<Array<ReturnType<typeof tokenJson>>> {
    const { flags } = await this.parse(TokensList);
    return this.withAdmin(flags, async ({ users }) => {
      const tokens = (await users.listTokens(await users.findUser(flags.user))).map(tokenJson);
      this.table(
        ['ID', 'NAME', 'CREATED', 'LAST USED', 'EXPIRES'],
        tokens.map((t) => [t.id, t.name, t.created_at, t.last_used_at ?? 'never', t.expires_at]),
      );
      return tokens;
    });
  }
}
