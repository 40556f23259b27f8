import { createInterface } from 'node:readline/promises';

import { Args, Flags } from '@oclif/core';

import { AdminCommand, adminFlags } from '../../cli/admin.js';

export default class UsersDelete extends AdminCommand {
  static override description =
    "Delete a user with its tokens, chats and push subscriptions. Its open streams close on every running server (1008) and its next request is refused.";

  static override examples = ['<%= config.bin %> users delete bob', '<%= config.bin %> users delete bob --yes --postgres-url postgres://coder@db/coder'];

  static override args = { user: Args.string({ description: 'Username or id.', required: true }) };

  static override flags = { ...adminFlags, yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation.' }) };

  static override enableJsonFlag = true;

  async run(): Promise<{ id: string; username: string; deleted: true }> {
    const { args, flags } = await this.parse(UsersDelete);
    return this.withAdmin(flags, async ({ users }) => {
      const user = await users.findUser(args.user);
      if (!flags.yes) {
        if (!process.stdin.isTTY) this.error('refusing to delete without confirmation: stdin is not a terminal; pass --yes', { exit: 1 });
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question(`Delete user ${user.username} and all its chats? (y/N) `);
        rl.close();
        if (!/^y(es)?$/i.test(answer.trim())) this.error('aborted; nothing changed', { exit: 1 });
      }
      await users.deleteUser(user);
      if (!this.jsonEnabled()) process.stderr.write(`Deleted user ${user.username} (${user.id}).\n`);
      return { id: user.id, username: user.username, deleted: true as const };
    });
  }
}
