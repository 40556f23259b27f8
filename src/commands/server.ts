import { Flags } from '@oclif/core';

import { BaseCommand, databaseFlags } from '../cli/base.js';
import { natsTargetFromFlags, pubsubFlags } from '../cli/pubsub.js';
import { ConfigError, parseDuration, parseHttpAddress, parseHttpUrl, parsePostgresUrl, positiveInt } from '../daemon/config.js';
import { startDaemon } from '../daemon/index.js';
import { createLogger, type LogFormat } from '../daemon/observability/logger.js';
import { defaultDataDir } from '../daemon/postgres/embedded.js';
import type { NatsTarget } from '../daemon/pubsub/nats.js';
import { isConnectionError } from '../daemon/postgres/errors.js';
import { normalizeSubject } from '../daemon/webpush/vapid.js';

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
    'http-address': Flags.string({ description: 'Address the HTTP API listens on.', default: '127.0.0.1:3000', env: 'CODER_LITE_HTTP_ADDRESS' }),
    'postgres-pool-max': Flags.integer({ description: 'Maximum connections in the database pool.', default: 10, env: 'CODER_LITE_POSTGRES_POOL_MAX' }),
    'log-format': Flags.string({ description: 'Log format on stderr.', options: ['json', 'pretty'], default: 'json', env: 'CODER_LITE_LOG_FORMAT' }),
    ...pubsubFlags(['postgres', 'nats', 'memory']),
    'chat-provider': Flags.string({
      description: 'The default model provider, seeded at start: fake (built in, deterministic) or openai-compat (any /v1/chat/completions server).',
      options: ['fake', 'openai-compat'],
      default: 'fake',
      env: 'CODER_LITE_CHAT_PROVIDER',
    }),
    'llm-base-url': Flags.string({ description: 'openai-compat: the base URL up to /v1, e.g. http://127.0.0.1:8080/v1.', env: 'CODER_LITE_LLM_BASE_URL' }),
    'llm-api-key': Flags.string({ description: 'openai-compat: the API key (kept in memory, never stored or logged).', env: 'CODER_LITE_LLM_API_KEY' }),
    'llm-model': Flags.string({ description: 'The default model name. [default: fake-model, or gpt-4o-mini for openai-compat]', env: 'CODER_LITE_LLM_MODEL' }),
    'fake-tokens': Flags.integer({ description: 'fake provider: pieces per reply.', default: 8, env: 'CODER_LITE_FAKE_TOKENS' }),
    'fake-token-delay': Flags.string({ description: 'fake provider: delay before each piece.', default: '20ms', env: 'CODER_LITE_FAKE_TOKEN_DELAY' }),
    webpush: Flags.boolean({ description: 'Web Push notifications after chat turns; --no-webpush turns the API off.', default: true, allowNo: true, env: 'CODER_LITE_WEBPUSH' }),
    'webpush-subject': Flags.string({
      description: 'The VAPID subject push services may contact: an https: URL or an e-mail (mailto: is added). [default: the access URL when https]',
      env: 'CODER_LITE_WEBPUSH_SUBJECT',
    }),
    'webpush-allow-insecure-endpoints': Flags.boolean({
      description: 'Development only: accept http and loopback/private push endpoints.',
      default: false,
      env: 'CODER_LITE_WEBPUSH_ALLOW_INSECURE_ENDPOINTS',
    }),
    'webpush-ttl': Flags.integer({
      description: 'Seconds a push service keeps a notification for an offline device (the TTL header); 0 delivers now or never.',
      default: 48 * 3600,
      min: 0,
      // FCM's limit, the lowest of the big push services.
      max: 28 * 24 * 3600,
      env: 'CODER_LITE_WEBPUSH_TTL',
    }),
    'access-url': Flags.string({ description: 'The URL users reach this daemon at. [default: the listen URL]', env: 'CODER_LITE_ACCESS_URL' }),
    'shutdown-grace': Flags.string({
      description: 'On SIGTERM/SIGINT, how long in-flight requests may take before their connections are cut; a second signal cuts at once.',
      default: '10s',
      env: 'CODER_LITE_SHUTDOWN_GRACE',
    }),
    'chat-heartbeat-interval': Flags.string({ description: 'How often running turns heartbeat.', default: '30s', hidden: true }),
    'chat-stale-after': Flags.string({ description: 'A running chat with an older heartbeat returns to pending.', default: '5m', hidden: true }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Server);
    let heartbeatIntervalMs: number;
    let staleAfterMs: number;
    let fakeTokenDelayMs: number;
    let shutdownGraceMs: number;
    let nats: NatsTarget | undefined;
    try {
      nats = natsTargetFromFlags(flags);
      parseHttpAddress(flags['http-address']);
      if (flags['postgres-url']) parsePostgresUrl(flags['postgres-url']);
      positiveInt('--postgres-pool-max', flags['postgres-pool-max'], 1000);
      if (flags['chat-provider'] === 'openai-compat') {
        if (!flags['llm-base-url']) throw new ConfigError('--chat-provider openai-compat needs --llm-base-url');
        parseHttpUrl('--llm-base-url', flags['llm-base-url']);
      }
      heartbeatIntervalMs = parseDuration('--chat-heartbeat-interval', flags['chat-heartbeat-interval']);
      staleAfterMs = parseDuration('--chat-stale-after', flags['chat-stale-after']);
      fakeTokenDelayMs = parseDuration('--fake-token-delay', flags['fake-token-delay']);
      shutdownGraceMs = parseDuration('--shutdown-grace', flags['shutdown-grace']);
      if (flags['access-url']) parseHttpUrl('--access-url', flags['access-url']);
      if (flags['webpush-subject']) {
        try {
          normalizeSubject(flags['webpush-subject']);
        } catch (err) {
          throw new ConfigError((err as Error).message);
        }
      }
      positiveInt('--fake-tokens', flags['fake-tokens'], 1_000_000);
    } catch (err) {
      if (err instanceof ConfigError) this.usageError(err.message);
      throw err;
    }
    const logger = createLogger({ level: flags['log-level'] as 'info', format: flags['log-format'] as LogFormat });
    // A lost database connection must never take the replica down, even from a promise nobody awaited; anything
    // else unhandled is a bug and still ends the process.
    process.on('unhandledRejection', (err) => {
      if (!isConnectionError(err)) throw err;
      logger.error({ err }, 'unhandled database connection failure (the replica goes on)');
    });
    const daemon = await startDaemon({
      logger,
      httpAddress: flags['http-address'],
      postgresUrl: flags['postgres-url'],
      dataDir: flags['data-dir'] ?? defaultDataDir(),
      postgresPoolMax: flags['postgres-pool-max'],
      pubsub: flags.pubsub as 'postgres' | 'memory' | 'nats',
      nats: nats && { target: nats },
      chat: {
        provider: flags['chat-provider'] as 'fake' | 'openai-compat',
        llmBaseUrl: flags['llm-base-url'],
        llmApiKey: flags['llm-api-key'],
        llmModel: flags['llm-model'],
        heartbeatIntervalMs,
        staleAfterMs,
        fakeTokens: flags['fake-tokens'],
        fakeTokenDelayMs,
      },
      accessUrl: flags['access-url'],
      webpush: {
        enabled: flags.webpush,
        subject: flags['webpush-subject'],
        allowInsecureEndpoints: flags['webpush-allow-insecure-endpoints'],
        ttlSeconds: flags['webpush-ttl'],
      },
    });

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
    this.exit('fatal' in outcome ? 1 : 0);
  }
}
