import { Args, Flags } from '@oclif/core';

import { AdminCommand, adminFlags } from '../../cli/admin.js';

export default class TokensRevoke extends AdminCommand {
  static override description = "Revoke an API token: its next request is refused and its open streams close on every running server (1008).";

  static override examples = ['<%= config.bin %> tokens revoke 8zq3k1m0pa --user alice'];

  static override args = { id: Args.string({ description: 'The token id (the part before the first "-").', required: true }) };

  static override flags = { ...adminFlags, user: Flags.string({ description: 'Username or id of its owner.', required: true }) };

  static override enableJsonFlag = true;

  async run(): Promise<{ id: string; revoked: true }> {
    const { args, flags } = await this.parse(TokensRevoke);
    return this.withAdmin(flags, async ({ users }) => {
      await users.revokeToken(await users.findUser(flags.user), args.id);
      if (!this.jsonEnabled()) process.stderr.write(`Revoked token ${args.id}.\n`);
      return { id: args.id, revoked: true as const };
    });
  }
}
