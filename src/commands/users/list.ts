import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { userJson } from '../../daemon/users/json.js';

export default class UsersList extends AdminCommand {
  static override description = 'List users: id, name, e-mail, role, status, created.';

  static override examples = ['<%= config.bin %> users list', '<%= config.bin %> users list --json | jq -r ".[].username"'];

  static override flags = adminFlags;

  static override enableJsonFlag = true;

  async run(): Promise<Array<ReturnType<typeof userJson>>> {
    const { flags } = await this.parse(UsersList);
    return this.withAdmin(flags, async ({ users }) => {
      const all = (await users.listUsers()).map(userJson);
      this.table(
        ['ID', 'USERNAME', 'EMAIL', 'ROLE', 'STATUS', 'CREATED'],
        all.map((u) => [u.id, u.username, u.email ?? '', u.is_admin ? 'admin' : 'member', u.status, u.created_at]),
      );
      return all;
    });
  }
}
