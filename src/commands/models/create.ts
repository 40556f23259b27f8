import { Flags } from '@oclif/core';

import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { modelJson } from '../../daemon/chat/models.js';

export default class ModelsCreate extends AdminCommand {
  static override description = "Add a model config to a provider. Every running server's config cache hears of it at once.";

  static override examples = [
    '<%= config.bin %> models create --provider openai --model gpt-4o-mini --display-name "GPT-4o mini" --default',
    '<%= config.bin %> models create --provider fake --model fake-fast --json',
  ];

  static override flags = {
    ...adminFlags,
    provider: Flags.string({ description: 'Provider name or id (see `providers list`).', required: true }),
    model: Flags.string({ description: "The model's name at the provider.", required: true }),
    'display-name': Flags.string({ description: 'A name to show users.' }),
    default: Flags.boolean({ description: 'Make it the default model config.' }),
  };

  static override enableJsonFlag = true;

  async run(): Promise<ReturnType<typeof modelJson>> {
    const { flags } = await this.parse(ModelsCreate);
    return this.withAdmin(flags, async ({ models }) => {
      const m = modelJson(await models.createModel({ provider: flags.provider, model: flags.model, displayName: flags['display-name'], makeDefault: flags.default }));
      if (!this.jsonEnabled()) process.stdout.write(`${m.id}\n`);
      return m;
    });
  }
}
