import { Args, Flags } from '@oclif/core';

import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { providerSecretFlags } from '../../cli/providerFlags.js';
import { providerJson } from '../../daemon/chat/models.js';

export default class ProvidersCreate extends AdminCommand {
  static override description = 'Add a chat provider. Its API key is sealed with AES-256-GCM under CODER_LITE_ENCRYPTION_KEY before it is stored.';

  static override examples = [
    'CODER_LITE_PROVIDER_API_KEY=sk-… <%= config.bin %> providers create openai --type openai-compat --base-url https://api.openai.com/v1',
  ];

  static override args = { name: Args.string({ description: 'Provider name.', required: true }) };

  static override flags = {
    ...adminFlags,
    ...providerSecretFlags,
    type: Flags.string({ description: 'Provider type.', options: ['openai-compat', 'fake'], required: true }),
    'base-url': Flags.string({ description: 'openai-compat: the base URL up to /v1.' }),
  };

  static override enableJsonFlag = true;

  async run(): Promise<ReturnType<typeof providerJson>> {
    const { args, flags } = await this.parse(ProvidersCreate);
    return this.withAdmin(
      flags,
      async ({ models }) =>
        providerJson(await models.createProvider({ name: args.name, type: flags.type as 'openai-compat' | 'fake', baseUrl: flags['base-url'], apiKey: flags['api-key'] })),
      flags['encryption-key'],
    );
  }
}
