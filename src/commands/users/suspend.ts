import { Args } from '@oclif/core';

import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { userJson } from '../../daemon/users/json.js';

export default class UsersSuspend extends AdminCommand {
  static override description = 'Suspend a user: its tokens are refused and its open streams close on every running server (1008) until `users activate`.';

  static override examples = ['<%= config.bin %> users suspend bob'];

  static override args = { user: Args.string({ description: 'Username or id.', required: true }) };

  static override flags = adminFlags;

  static override enableJsonFlag = true;

  async run(): Promise<ReturnType<typeof userJson>> {
    const { args, flags } = await this.parse(UsersSuspend);
    return this.withAdmin(flags, async ({ users }) => {
      const user = userJson(await users.setSuspended(await users.findUser(args.user), true));
      if (!this.jsonEnabled()) process.stderr.write(`User ${user.username} is ${user.status}.\n`);
      return user;
    });
  }
}
