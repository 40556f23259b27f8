import { Flags } from '@oclif/core';

import { ConfigError } from '../daemon/config.js';
import { parseNatsUrls, type NatsTarget } from '../daemon/pubsub/nats.js';

/** The pubsub backend flags of `server`, `pubsub tail`, `pubsub publish` and `scaletest run`. */
export function pubsubFlags(backends: readonly string[]) {
  return {
    pubsub: Flags.string({
      description:
        'Pubsub backend: postgres (LISTEN/NOTIFY on the database), nats (a NATS server, for deployments past one PostgreSQL\'s NOTIFY)' +
        (backends.includes('memory') ? ' or memory (a single process only).' : '.'),
      options: [...backends],
      default: 'postgres',
      env: 'CODER_LITE_PUBSUB',
    }),
    'nats-url': Flags.string({
      description: 'With --pubsub nats: nats://host:4222, comma-separated for a cluster; user:password@ or token@ in the URL are sent as credentials.',
      env: 'CODER_LITE_NATS_URL',
    }),
    'nats-token': Flags.string({ description: 'With --pubsub nats: an auth token (kept in memory, never logged).', env: 'CODER_LITE_NATS_TOKEN' }),
    'nats-creds': Flags.string({ description: 'With --pubsub nats: a .creds file (user JWT and NKey seed).', env: 'CODER_LITE_NATS_CREDS' }),
  };
}

export interface PubsubFlagValues {
  pubsub: string;
  'nats-url'?: string;
  'nats-token'?: string;
  'nats-creds'?: string;
}

/** The NATS target for `--pubsub nats`, undefined for the other backends; a ConfigError (exit 2) when unusable. */
export function natsTargetFromFlags(flags: PubsubFlagValues): NatsTarget | undefined {
  if (flags.pubsub !== 'nats') return undefined;
  if (!flags['nats-url']) throw new ConfigError('--pubsub nats needs --nats-url (or CODER_LITE_NATS_URL), e.g. nats://127.0.0.1:4222');
  try {
    return parseNatsUrls(flags['nats-url'], { token: flags['nats-token'], credsFile: flags['nats-creds'] });
  } catch (err) {
    throw new ConfigError(`invalid --nats-url: ${(err as Error).message}`);
  }
}
