import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { modelJson, providerJson } from '../../daemon/chat/models.js';

export default class ModelsList extends AdminCommand {
  static override description = 'List model configs with their providers; chats pick one by id (`model_config_id`), or get the default.';

  static override examples = ['<%= config.bin %> models list', '<%= config.bin %> models list --json'];

  static override flags = adminFlags;

  static override enableJsonFlag = true;

  async run(): Promise<Array<ReturnType<typeof modelJson> & { provider: string }>> {
    const { flags } = await this.parse(ModelsList);
    return this.withAdmin(flags, async ({ models }) => {
      const providers = new Map((await models.listProviders()).map((p) => [p.id, providerJson(p)]));
      const all = (await models.listModels()).map((m) => ({ ...modelJson(m), provider: providers.get(m.providerId)?.name ?? '' }));
      this.table(
        ['ID', 'PROVIDER', 'MODEL', 'NAME', 'DEFAULT', 'ENABLED'],
        all.map((m) => [m.id, m.provider, m.model, m.display_name ?? '', m.is_default ? 'yes' : '', m.enabled && providers.get(m.provider_id)?.enabled ? 'yes' : 'no']),
      );
      return all;
    });
  }
}
