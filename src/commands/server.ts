import { Flags } from '@oclif/core';

import { BaseCommand, databaseFlags, errorMessage } from '../cli/base.js';
import { formatDuration, readConfigFile, redactConfig, toYaml } from '../cli/configFile.js';
import { ExitCode } from '../cli/exitCodes.js';
import { durationFlag, FlagValueError, httpAddressFlag, httpUrlFlag, intFlag } from '../cli/flags.js';
import { natsTargetFromFlags, pubsubFlags } from '../cli/pubsub.js';
import { SecretBox, SecretKeyError } from '../daemon/chat/secretBox.js';
import { ConfigError } from '../daemon/config.js';
import { startDaemon, type Daemon } from '../daemon/index.js';
import { createLogger, type LogFormat } from '../daemon/observability/logger.js';
import { defaultDataDir } from '../daemon/postgres/embedded.js';
import { isConnectionError } from '../daemon/postgres/errors.js';
import { describeConnection } from '../daemon/postgres/pool.js';
import type { NatsTarget } from '../daemon/pubsub/nats.js';
import { defaultEncryptionThreads } from '../daemon/webpush/config.js';
import { normalizeSubject } from '../daemon/webpush/vapid.js';

const durationKeys = new Set(['fake-token-delay', 'shutdown-grace', 'chat-heartbeat-interval', 'chat-stale-after']);
export default class Server extends BaseCommand {
  static override description =
    'Run the coder-lite daemon: HTTP API, chat streams, pubsub and Web Push. Without --postgres-url it runs an embedded PostgreSQL in --data-dir.';

  static override examples = [
    '<%= config.bin %> server',
    '<%= config.bin %> server --http-address 0.0.0.0:8080 --postgres-url postgres://coder:secret@db:5432/coder',
    '<%= config.bin %> server --log-format pretty --log-level debug',
    '<%= config.bin %> server --pubsub nats --nats-url nats://nats-1:4222,nats://nats-2:4222 --nats-creds /etc/coder-lite/nats.creds',
  ];

  static override flags = {
    ...databaseFlags,
    config: Flags.string({
      description: 'A YAML file whose keys are these flag names (http-address: 0.0.0.0:3000). A flag beats its env variable, which beats the file.',
      env: 'CODER_LITE_CONFIG',
    }),
    'write-config': Flags.boolean({ description: 'Print the effective configuration as YAML (secrets redacted) and exit; a starting point for --config.' }),
    'http-address': httpAddressFlag({ description: 'Address the HTTP API listens on.', default: '127.0.0.1:3000', env: 'CODER_LITE_HTTP_ADDRESS' }),
    'postgres-pool-max': intFlag({ description: 'Maximum connections in the database pool.', min: 1, max: 1000, default: 10, env: 'CODER_LITE_POSTGRES_POOL_MAX' }),
    'log-format': Flags.string({
      description: 'Log format on stderr. [default: a short banner and pretty logs on a terminal, json otherwise]',
      options: ['json', 'pretty'],
      env: 'CODER_LITE_LOG_FORMAT',
    }),
    ...pubsubFlags(['postgres', 'nats', 'memory']),
    'chat-provider': Flags.string({
      description: 'The default model provider, seeded at start: fake (built in, deterministic) or openai-compat (any /v1/chat/completions server).',
      options: ['fake', 'openai-compat'],
      default: 'fake',
      env: 'CODER_LITE_CHAT_PROVIDER',
    }),
    'llm-base-url': httpUrlFlag({ description: 'openai-compat: the base URL up to /v1, e.g. http://127.0.0.1:8080/v1.', env: 'CODER_LITE_LLM_BASE_URL' }),
    'llm-api-key': Flags.string({ description: 'openai-compat: the API key (kept in memory, never stored or logged).', env: 'CODER_LITE_LLM_API_KEY' }),
    'llm-model': Flags.string({ description: 'The default model name. [default: fake-model, or gpt-4o-mini for openai-compat]', env: 'CODER_LITE_LLM_MODEL' }),
    'fake-tokens': intFlag({ description: 'fake provider: pieces per reply.', min: 1, max: 1_000_000, default: 8, env: 'CODER_LITE_FAKE_TOKENS' }),
    'fake-token-delay': durationFlag({ description: 'fake provider: delay before each piece.', default: 20, env: 'CODER_LITE_FAKE_TOKEN_DELAY' }),
    webpush: Flags.boolean({ description: 'Web Push notifications after chat turns; --no-webpush turns the API off.', default: true, allowNo: true, env: 'CODER_LITE_WEBPUSH' }),
    'webpush-subject': Flags.string({
      description: 'The VAPID subject push services may contact: an https: URL or an e-mail (mailto: is added). [default: the access URL when https]',
      env: 'CODER_LITE_WEBPUSH_SUBJECT',
      parse: async (input) => {
        try {
          normalizeSubject(input);
        } catch (err) {
          throw new FlagValueError((err as Error).message, { cause: err });
        }
        return input;
      },
    }),
    'webpush-allow-insecure-endpoints': Flags.boolean({
      description: 'Development only: accept http and loopback/private push endpoints.',
      default: false,
      env: 'CODER_LITE_WEBPUSH_ALLOW_INSECURE_ENDPOINTS',
    }),
    'webpush-ttl': intFlag({
      description: 'Seconds a push service keeps a notification for an offline device (the TTL header); 0 delivers now or never.',
      default: 48 * 3600,
      min: 0,
      // FCM's limit, the lowest of the big push services.
      max: 28 * 24 * 3600,
      env: 'CODER_LITE_WEBPUSH_TTL',
    }),
    'webpush-encryption-threads': intFlag({
      description: 'Worker threads that encrypt push payloads; 0 encrypts on the main thread. [default: 1 with two or more cores, else 0]',
      min: 0,
      max: 64,
      env: 'CODER_LITE_WEBPUSH_ENCRYPTION_THREADS',
    }),
    'access-url': httpUrlFlag({ description: 'The URL users reach this daemon at. [default: the listen URL]', env: 'CODER_LITE_ACCESS_URL' }),
    'shutdown-grace': durationFlag({
      description: 'On SIGTERM/SIGINT, how long in-flight requests may take before their connections are cut; a second signal cuts at once.',
      default: 10_000,
      env: 'CODER_LITE_SHUTDOWN_GRACE',
    }),
    'prometheus-address': httpAddressFlag({
      description: 'Serve /metrics on its own listener at host:port (e.g. 127.0.0.1:2112); the public /metrics is then off.',
      env: 'CODER_LITE_PROMETHEUS_ADDRESS',
    }),
    'encryption-key': Flags.string({
      description: 'Seals provider API keys stored in the database (AES-256-GCM): 32 bytes, base64 (`openssl rand -base64 32`). Every replica needs the same one.',
      env: 'CODER_LITE_ENCRYPTION_KEY',
    }),
    'chat-heartbeat-interval': durationFlag({ description: 'How often running turns heartbeat.', default: 30_000, hidden: true }),
    'chat-stale-after': durationFlag({ description: 'A running chat with an older heartbeat returns to pending.', default: 300_000, hidden: true }),
  };

  /** Flags, then env variables, then --config, then defaults: the file only fills what the first two left unset. */
  private async parseWithConfigFile() {
    const first = await this.parse(Server);
    const path = first.flags.config;
    if (!path) return first;
    const unset = (name: string) => (first.flags as Record<string, unknown>)[name] === undefined || first.metadata.flags[name]?.setFromDefault === true;
    const flags = Server.flags as unknown as Record<string, { type: 'boolean' | 'option'; allowNo?: boolean }>;
    const tokens = await readConfigFile(path, { ...flags, 'log-level': { type: 'option' } }, new Set(['config', 'write-config']));
    const fromFile = [...tokens].filter(([name]) => unset(name));
    try {
      return await this.parse(Server, [...this.argv, ...fromFile.map(([, token]) => token)]);
    } catch (err) {
      // A bad value from the file is blamed on the file's key, not on a flag nobody typed.
      if (err instanceof FlagValueError) {
        const name = fromFile.find(([key]) => err.message.includes(`--${key}`))?.[0];
        if (name) err.message = errorMessage(err).replaceAll(`--${name}`, `${name} in ${path}`);
      }
      throw err;
    }
  }

  async run(): Promise<void> {
    const { flags } = await this.parseWithConfigFile();
    let nats: NatsTarget | undefined;
    try {
      nats = natsTargetFromFlags(flags);
      if (flags['chat-provider'] === 'openai-compat' && !flags['llm-base-url']) throw new ConfigError('--chat-provider openai-compat needs --llm-base-url');
      // A key of the wrong size is a usage error now, not a failed turn later.
      if (flags['encryption-key']) new SecretBox(flags['encryption-key']);
    } catch (err) {
      if (err instanceof ConfigError || err instanceof SecretKeyError) this.usageError(err.message);
      throw err;
    }
    if (flags['write-config']) {
      process.stdout.write(await toYaml(this.effectiveConfig(flags)));
      return;
    }
    // A person at a terminal gets a banner and readable logs; anything else (a service manager, a pipe) gets JSON.
    const human = flags['log-format'] === undefined && Boolean(process.stderr.isTTY);
    const format: LogFormat = (flags['log-format'] as LogFormat | undefined) ?? (human ? 'pretty' : 'json');
    const logger = createLogger({ level: flags['log-level'] as 'info', format });
    const shutdownGraceMs = flags['shutdown-grace'];
    // A lost database connection must never take the replica down, even from a promise nobody awaited; anything
    // else unhandled is a bug and still ends the process.
    process.on('unhandledRejection', (err) => {
      if (!isConnectionError(err)) throw err;
      logger.error({ err }, 'unhandled database connection failure (the replica goes on)');
    });
    const dataDir = flags['data-dir'] ?? defaultDataDir();
    const daemon = await startDaemon({
      logger,
      httpAddress: flags['http-address'],
      postgresUrl: flags['postgres-url'],
      dataDir,
      postgresPoolMax: flags['postgres-pool-max'],
      pubsub: flags.pubsub as 'postgres' | 'memory' | 'nats',
      nats: nats && { target: nats },
      chat: {
        provider: flags['chat-provider'] as 'fake' | 'openai-compat',
        llmBaseUrl: flags['llm-base-url'],
        llmApiKey: flags['llm-api-key'],
        llmModel: flags['llm-model'],
        heartbeatIntervalMs: flags['chat-heartbeat-interval'],
        staleAfterMs: flags['chat-stale-after'],
        fakeTokens: flags['fake-tokens'],
        fakeTokenDelayMs: flags['fake-token-delay'],
      },
      accessUrl: flags['access-url'],
      prometheusAddress: flags['prometheus-address'],
      encryptionKey: flags['encryption-key'],
      webpush: {
        enabled: flags.webpush,
        subject: flags['webpush-subject'],
        allowInsecureEndpoints: flags['webpush-allow-insecure-endpoints'],
        ttlSeconds: flags['webpush-ttl'],
        encryptionThreads: flags['webpush-encryption-threads'] ?? defaultEncryptionThreads,
      },
    });
    if (human) process.stderr.write(banner(daemon, { dataDir, embedded: !flags['postgres-url'], pubsub: flags.pubsub, accessUrl: flags['access-url'] }));

    const outcome = await new Promise<{ signal: string } | { fatal: Error }>((resolve) => {
      const onSignal = (signal: string) => resolve({ signal });
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      void daemon.fatal.then((fatal) => resolve({ fatal }));
    });
    // A second signal while draining means "now": the grace ends, the rest of the shutdown still runs.
    const grace = new AbortController();
    const graceTimer = setTimeout(() => grace.abort(), shutdownGraceMs);
    const skipGrace = () => {
      logger.warn('second signal: cutting in-flight requests now');
      grace.abort();
    };
    process.on('SIGINT', skipGrace);
    process.on('SIGTERM', skipGrace);

    if ('fatal' in outcome) logger.fatal({ err: outcome.fatal }, 'fatal daemon failure; shutting down');
    else logger.info({ signal: outcome.signal, graceMs: shutdownGraceMs }, 'shutting down');
    await daemon.close(grace.signal);
    clearTimeout(graceTimer);
    logger.info('shutdown complete');
    logger.flush();
    this.exit('fatal' in outcome ? ExitCode.failure : ExitCode.ok);
  }

  /** Every flag with its value now, durations as written, secrets redacted: `--write-config > coder-lite.yaml`. */
  private effectiveConfig(flags: Record<string, unknown>): Record<string, unknown> {
    const values: Record<string, unknown> = {};
    for (const name of ['log-level', ...Object.keys(Server.flags)]) {
      if (name === 'config' || name === 'write-config') continue;
      const v = flags[name];
      values[name] = durationKeys.has(name) && typeof v === 'number' ? formatDuration(v) : v;
    }
    return redactConfig(values, new Set(['llm-api-key', 'nats-token', 'encryption-key']), new Set(['postgres-url', 'nats-url']));
  }
}

/** The start as `coder server` shows it: where to go, what it runs on. */
function banner(daemon: Daemon, o: { dataDir: string; embedded: boolean; pubsub: string; accessUrl?: string }): string {
  const db = describeConnection(daemon.db.connectionConfig);
  const lines = [
    `coder-lite is running`,
    `  URL        ${o.accessUrl ?? daemon.url}${o.accessUrl ? ` (listening on ${daemon.url})` : ''}`,
    `  Data dir   ${o.dataDir}`,
    `  Database   ${o.embedded ? `embedded PostgreSQL (${db})` : db}`,
    `  Pubsub     ${o.pubsub === 'postgres' ? 'PostgreSQL LISTEN/NOTIFY' : o.pubsub}`,
    `  Web push   ${daemon.webpush ? `VAPID public key ${daemon.webpush.vapid.current.publicKey}` : 'off'}`,
    '',
  ];
  return `${lines.join('\n')}\n`;
}
