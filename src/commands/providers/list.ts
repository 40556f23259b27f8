import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { providerJson } from '../../daemon/chat/models.js';

export default class ProvidersList extends AdminCommand {
  static override description = 'List chat providers: name, type, base URL, enabled, whether an API key is stored (never the key).';

  static override examples = ['<%= config.bin %> providers list'];

  static override flags = adminFlags;

  static override enableJsonFlag = true;

  async run(): Promise<Array<ReturnType<typeof providerJson>>> {
    const { flags } = await this.parse(ProvidersList);
    return this.withAdmin(flags, async ({ models }) => {
      const all = (await models.listProviders()).map(providerJson);
      this.table(
        ['ID', 'NAME', 'TYPE', 'BASE URL', 'ENABLED', 'API KEY'],
        all.map((p) => [p.id, p.name, p.type, p.base_url ?? '', p.enabled ? 'yes' : 'no', p.has_api_key ? 'stored' : '']),
      );
      return all;
    });
  }
}
