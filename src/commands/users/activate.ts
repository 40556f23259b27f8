import { Args } from '@oclif/core';

import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { userJson } from '../../daemon/users/json.js';

export default class UsersActivate extends AdminCommand {
  static override description = "Lift a suspension: the user's tokens work again.";

  static override examples = ['<%= config.bin %> users activate bob'];

  static override args = { user: Args.string({ description: 'Username or id.', required: true }) };

  static override flags = adminFlags;

  static override enableJsonFlag = true;

  async run(): Promise<ReturnType<typeof userJson>> {
    const { args, flags } = await this.parse(UsersActivate);
    return this.withAdmin(flags, async ({ users }) => {
      const user = userJson(await users.setSuspended(await users.findUser(args.user), false));
      if (!this.jsonEnabled()) process.stderr.write(`User ${user.username} is ${user.status}.\n`);
      return user;
    });
  }
}
