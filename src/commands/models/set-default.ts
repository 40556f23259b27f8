import { Args } from '@oclif/core';

import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { modelJson } from '../../daemon/chat/models.js';

export default class ModelsSetDefault extends AdminCommand {
  static override description = "Make a model config the default (chats created without model_config_id use it). It stays the default across restarts, whatever --llm-model says.";

  static override examples = ['<%= config.bin %> models set-default 0d9c4c9e-6c1f-4f7e-9a49-3b6f0b7f2a10'];

  static override args = { id: Args.string({ description: 'Model config id (see `models list`).', required: true }) };

  static override flags = adminFlags;

  static override enableJsonFlag = true;

  async run(): Promise<ReturnType<typeof modelJson>> {
    const { args, flags } = await this.parse(ModelsSetDefault);
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(args.id)) this.usageError(`invalid model config id "${args.id}": expected a UUID`);
    return this.withAdmin(flags, async ({ models }) => {
      const m = modelJson(await models.setDefault(args.id));
      if (!this.jsonEnabled()) process.stderr.write(`${m.model} (${m.id}) is the default model config.\n`);
      return m;
    });
  }
}
