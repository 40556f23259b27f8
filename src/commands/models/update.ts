import { Args, Flags } from '@oclif/core';

import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { modelJson } from '../../daemon/chat/models.js';

export default class ModelsUpdate extends AdminCommand {
  static override description = 'Rename, disable or enable a model config (the default cannot be disabled). Running servers pick it up at once.';

  static override examples = ['<%= config.bin %> models update <id> --no-enabled', '<%= config.bin %> models update <id> --display-name "Fast"'];

  static override args = { id: Args.string({ description: 'Model config id (see `models list`).', required: true }) };

  static override flags = {
    ...adminFlags,
    'display-name': Flags.string({ description: 'A name to show users.' }),
    enabled: Flags.boolean({ description: 'Enable it (--no-enabled disables it: chats using it fail their next turn with an error).', allowNo: true }),
  };

  static override enableJsonFlag = true;

  async run(): Promise<ReturnType<typeof modelJson>> {
    const { args, flags } = await this.parse(ModelsUpdate);
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(args.id)) this.usageError(`invalid model config id "${args.id}": expected a UUID`);
    if (flags['display-name'] === undefined && flags.enabled === undefined) this.usageError('nothing to change: pass --display-name, --enabled or --no-enabled');
    return this.withAdmin(flags, async ({ models }) => modelJson(await models.updateModel(args.id, { displayName: flags['display-name'], enabled: flags.enabled })));
  }
}
