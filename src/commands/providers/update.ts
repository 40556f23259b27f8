import { Args, Flags } from '@oclif/core';

import { AdminCommand, adminFlags } from '../../cli/admin.js';
import { providerSecretFlags } from '../../cli/providerFlags.js';
import { providerJson } from '../../daemon/chat/models.js';

export default class ProvidersUpdate extends AdminCommand {
  static override description = "Change a provider's base URL or API key, or disable or enable it. Running servers pick it up at once.";

  static override examples = [
    'CODER_LITE_PROVIDER_API_KEY=sk-new… <%= config.bin %> providers update openai',
    '<%= config.bin %> providers update openai --no-enabled',
  ];

  static override args = { provider: Args.string({ description: 'Provider name or id.', required: true }) };

  static override flags = {
    ...adminFlags,
    ...providerSecretFlags,
    'base-url': Flags.string({ description: 'openai-compat: the base URL up to /v1.' }),
    'clear-api-key': Flags.boolean({ description: 'Remove the stored API key.', exclusive: ['api-key'] }),
    enabled: Flags.boolean({ description: 'Enable it (--no-enabled disables it and every model config on it).', allowNo: true }),
  };

  static override enableJsonFlag = true;

  async run(): Promise<ReturnType<typeof providerJson>> {
    const { args, flags } = await this.parse(ProvidersUpdate);
    return this.withAdmin(
      flags,
      async ({ models }) =>
        providerJson(
          await models.updateProvider(args.provider, { baseUrl: flags['base-url'], apiKey: flags['api-key'], clearApiKey: flags['clear-api-key'], enabled: flags.enabled }),
        ),
      flags['encryption-key'],
    );
  }
}
