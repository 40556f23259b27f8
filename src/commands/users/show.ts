import { Args } from '@oclif/core';

import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { tokenJson, userJson } from '../../daemon/users/json.js';

export default class UsersShow extends AdminCommand {
  static override description = 'Show a user and its tokens (never their secrets).';

  static override examples = ['<%= config.bin %> users show alice', '<%= config.bin %> users show alice --json'];

  static override args = { user: Args.string({ description: 'Username or id.', required: true }) };

  static override flags = adminFlags;

  static override enableJsonFlag = true;

  async run(): Promise<ReturnType<typeof userJson> & { tokens: Array<ReturnType<typeof tokenJson>> }> {
    const { args, flags } = await this.parse(UsersShow);
    return this.withAdmin(flags, async ({ users }) => {
      const user = await users.findUser(args.user);
      const shown = { ...userJson(user), tokens: (await users.listTokens(user)).map(tokenJson) };
      this.table(
        ['ID', 'USERNAME', 'EMAIL', 'ROLE', 'STATUS', 'CREATED', 'TOKENS'],
        [[shown.id, shown.username, shown.email ?? '', shown.is_admin ? 'admin' : 'member', shown.status, shown.created_at, String(shown.tokens.length)]],
      );
      return shown;
    });
  }
}
