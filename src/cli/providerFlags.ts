import { Flags } from '@oclif/core';

/** How `providers create|update` take secrets: from the environment rather than the command line, preferably. */
export const providerSecretFlags = {
  'api-key': Flags.string({
    description: "The provider's API key, stored encrypted (prefer the env variable: a flag shows in `ps` and shell history).",
    env: 'CODER_LITE_PROVIDER_API_KEY',
  }),
  'encryption-key': Flags.string({
    description: "The servers' encryption key (32 bytes, base64): seals the API key. Must be the one the servers run with.",
    env: 'CODER_LITE_ENCRYPTION_KEY',
  }),
};
