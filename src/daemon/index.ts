import type { AddressInfo } from 'node:net';

import type { FastifyInstance } from 'fastify';

import { resolveChatConfig, type ChatConfig, type ResolvedChatConfig } from './chat/config.js';
import { ConfigCache } from './chat/configCache.js';
import { createChatMetrics } from './chat/metrics.js';
import { ModelAdmin } from './chat/models.js';
import { ChatNotifier } from './chat/notifier.js';
import { fakeProvider } from './chat/providers/fake.js';
import { createLLMMetrics, instrumentProvider } from './chat/providers/instrumented.js';
import { openaiCompatProvider } from './chat/providers/openaiCompat.js';
import { QueueFront } from './chat/queueFront.js';
import { BatchedChatReads } from './chat/reads.js';
import { SecretBox } from './chat/secretBox.js';
import { ChatService } from './chat/service.js';
import { ChatStreams, type StreamHooks, type StreamStore } from './chat/stream.js';
import type { TurnEndListener } from './chat/turnResult.js';
import { ChatWorker, newWorkerId } from './chat/worker.js';
import { LocalParts } from './chat/parts.js';
import { PartsRelay } from './chat/relay.js';
import { ConfigError, parseHttpAddress, version } from './config.js';
import { PushWindow } from './health/pushWindow.js';
import { daemonHealth } from './health/report.js';
import { buildApp, underPrefixes, type HttpLimits } from './http/app.js';
import { authenticated } from './http/auth.js';
import { createHttpMetrics } from './http/metrics.js';
import { chatRoutes } from './http/routes/chats.js';
import { consoleRoutes } from './http/routes/console.js';
import { debugRoutes } from './http/routes/debug.js';
import { healthRoutes } from './http/routes/health.js';
import { modelRoutes } from './http/routes/models.js';
import { streamRoutes } from './http/routes/stream.js';
import { userRoutes } from './http/routes/users.js';
import { webpushRoutes } from './http/routes/webpush.js';
import { SocketRegistry } from './http/sockets.js';
import { Lifecycle } from './lifecycle.js';
import type { Logger } from './observability/logger.js';
import { createMetricsRegistry, registerBuildInfo, type Registry } from './observability/metrics.js';
import { serveMetrics } from './observability/metricsServer.js';
import { StatementBatcher } from './postgres/batcher.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './postgres/embedded.js';
import { migrate } from './postgres/migrate.js';
import { createDatabase, describeConnection, type Database } from './postgres/pool.js';
import { createMemoryPubsub } from './pubsub/memory.js';
import { createNatsPubsub, type NatsTarget } from './pubsub/nats.js';
import { createPostgresPubsub } from './pubsub/postgres.js';
import type { Pubsub } from './pubsub/pubsub.js';
import { startWatchdog, type WatchdogOptions } from './pubsub/watchdog.js';
import { countChatsByStatus } from './store/chats.js';
import { getAPIKeyWithUser } from './store/apiKeys.js';
import { getBackendPid, getServerVersion, notificationQueueUsage, ping } from './store/health.js';
import { deleteWebpushSubscriptionsByIDs, getWebpushSubscriptionsByUserIDs, markWebpushSubscriptionsSucceeded } from './store/webpush.js';
import { APIKeyCache, type Revocation } from './users/apiKeyCache.js';
import { Authenticator, UserAdmin } from './users/service.js';
import { coderLikeTurnReads } from './webpush/coderLikeReads.js';
import type { WebpushConfig } from './webpush/config.js';
import { PushDispatcher } from './webpush/dispatcher.js';
import { EncryptPool } from './webpush/encryptPool.js';
import { createWebpushMetrics } from './webpush/metrics.js';
import { PresenceTracker } from './webpush/presence.js';
import { WebpushService } from './webpush/service.js';
import { SubscriptionCache } from './webpush/subscriptionCache.js';
import { TurnPush } from './webpush/turnPush.js';
import { normalizeSubject, VapidKeyHolder, VapidTokenCache } from './webpush/vapid.js';

export interface DaemonConfig {
  logger: Logger;
  /** `host:port`; port 0 picks a free one (tests). */
  httpAddress: string;
  /** External PostgreSQL; when absent an embedded cluster runs in `dataDir`. */
  postgresUrl?: string;
  dataDir: string;
  postgresPoolMax: number;
  /** Settings for the embedded cluster (the scaletest and tests turn fsync off). */
  embeddedSettings?: Record<string, string>;
  /** A registry of one's own, e.g. to read figures in-process; one is made otherwise. */
  registry?: Registry;
  /** `memory` only for a single process: replicas would not hear each other. Default `postgres`. */
  pubsub?: 'postgres' | 'memory' | 'nats';
  /** Where NATS is, for `pubsub: 'nats'`; the subject prefix keeps deployments sharing one NATS apart. */
  nats?: { target: NatsTarget; subjectPrefix?: string };
  chat?: ChatConfig;
  webpush?: WebpushConfig;
  /** The URL users reach the daemon at; defaults to the listen URL. */
  accessUrl?: string;
  /** `host:port` of a listener of its own for `/metrics`; the public `/metrics` is then off. */
  prometheusAddress?: string;
  /** 32 bytes, base64 (`CODER_LITE_ENCRYPTION_KEY`): seals provider API keys at rest. Without it none can be stored. */
  encryptionKey?: string;
  /** Every request reads its API key from the database (scaletest comparison). */
  apiKeyCacheDisabled?: boolean;
  /** HTTP limits and timeouts (tests shrink them); defaults in http/app.ts. */
  http?: Partial<HttpLimits> & { wsPingIntervalMs?: number };
}

/** What tests put between the parts: fake clocks, delayed or failing reads, listeners of their own. */
export interface DaemonSeams {
  /** Watchdog timing; defaults: heartbeat every 15 s, trip after 5 min of silence. */
  pubsubWatchdog?: Pick<WatchdogOptions, 'periodMs' | 'timeoutMs' | 'clock'>;
  /** Told about every finished turn, beside the push after a turn. */
  turnEndListeners?: TurnEndListener[];
  chatStreamHooks?: StreamHooks;
  chatStreamStore?: (real: StreamStore) => StreamStore;
}

export interface Daemon {
  /** Base URL of the HTTP API. */
  url: string;
  /** Where `/metrics` is served with `prometheusAddress`. */
  metricsUrl?: string;
  db: Database;
  registry: Registry;
  app: FastifyInstance;
  pubsub: Pubsub;
  chats: { service: ChatService; streams: ChatStreams; parts: LocalParts; relay: PartsRelay; worker: ChatWorker; configCache: ConfigCache; models: ModelAdmin };
  auth: { cache: APIKeyCache; sockets: SocketRegistry; admin: UserAdmin };
  /** Absent when Web Push is off. `threadIds`: the OS threads push encryption runs on besides the main one. */
  webpush?: { service: WebpushService; vapid: VapidKeyHolder; turnPush: TurnPush; presence: PresenceTracker; threadIds(): number[] };
  /** What the database says of itself: its version, and one backend's pid (the scaletest finds the postmaster by it). */
  databaseInfo(): Promise<{ serverVersion: string; backendPid: number }>;
  /** Resolves with an error when a part fails fatally (the process should exit non-zero). */
  fatal: Promise<Error>;
  /**
   * Shutdown, idempotent: stop accepting; let in-flight requests finish until `grace` aborts (default 10 s), then cut
   * what is left (WebSockets close with 1001); hand running turns back; drain pushes; close the pool; stop the
   * embedded PostgreSQL.
   */
  close(grace?: AbortSignal): Promise<void>;
}

const defaultShutdownGraceMs = 10_000;

/** The composition root: the one place that builds concrete parts and wires them together. */
export async function startDaemon(config: DaemonConfig, seams: DaemonSeams = {}): Promise<Daemon> {
  const { logger } = config;
  const listen = parseHttpAddress(config.httpAddress);
  const registry = config.registry ?? createMetricsRegistry();
  const life = new Lifecycle((err, part) => logger.error({ err, part }, 'shutdown step failed'));
  // Set by close(): the stops of the HTTP server and the worker are bounded by it.
  let grace: AbortSignal = AbortSignal.timeout(defaultShutdownGraceMs);

  return life.build(async () => {
    let postgresUrl = config.postgresUrl;
    if (!postgresUrl) {
      const embedded = await life.start('embedded PostgreSQL', () => startEmbeddedPostgres({ dataDir: config.dataDir, logger, settings: config.embeddedSettings }), (e) => e.stop());
      postgresUrl = embedded.localUrl;
    }
    const db = await life.start('database pool', () => createDatabase({ connectionString: postgresUrl, max: config.postgresPoolMax, registry }), (d) => d.close());
    try {
      const { applied } = await migrate(db.connectionConfig);
      if (applied.length > 0) logger.info({ applied }, 'applied database migrations');
    } catch (err) {
      throw new Error(`cannot prepare the database at ${describeConnection(db.connectionConfig)}: ${(err as Error).message}`, { cause: err });
    }

    // Parts that can fail beyond repair (the pubsub watchdog) report here; `server` exits non-zero on it.
    let reportFatal!: (err: Error) => void;
    const fatal = new Promise<Error>((resolve) => (reportFatal = resolve));

    const nats = config.pubsub === 'nats' ? config.nats : undefined;
    if (config.pubsub === 'nats' && !nats) throw new ConfigError('the nats pubsub needs a NATS URL');
    const pubsub: Pubsub = await life.start(
      'pubsub',
      () =>
        config.pubsub === 'memory'
          ? createMemoryPubsub({ logger })
          : nats
            ? createNatsPubsub({ ...nats, logger, registry })
            : createPostgresPubsub({ connectionConfig: db.connectionConfig, pool: db, logger, registry }),
      (p) => p.close(),
    );
    const watchdog = await life.start('pubsub watchdog', () => startWatchdog({ pubsub, logger, ...seams.pubsubWatchdog }), (w) => w.close());
    void watchdog.timeout.then(reportFatal);

    // Known once listening; notifications link to it.
    let publicUrl = config.accessUrl;
    const baseUrl = () => publicUrl ?? 'http://localhost/';
    const webpush = config.webpush?.enabled === false ? undefined : await startWebpush(config, db, pubsub, registry, life, baseUrl);
    const chatConfig = resolveChatConfig(config.chat);
    const chatMetrics = createChatMetrics(registry, () => countChatsByStatus(db));
    const notifier = new ChatNotifier(pubsub, chatMetrics, logger);
    const secrets = config.encryptionKey ? new SecretBox(config.encryptionKey) : undefined;
    const apiKeys = new Map<string, string>(chatConfig.llmApiKey ? [[chatConfig.provider, chatConfig.llmApiKey]] : []);
    const configCache = await life.start(
      'chat config cache',
      async () => {
        const cache = new ConfigCache({ db, apiKeys, disabled: chatConfig.configCacheDisabled, openSecret: secrets && ((sealed) => secrets.open(sealed)) });
        await cache.start(pubsub);
        return cache;
      },
      (c) => c.close(),
    );
    const llmMetrics = createLLMMetrics(registry);
    registerBuildInfo(registry, version);
    const reads = new BatchedChatReads(db);
    const realStreamStore: StreamStore = reads;
    const workerId = newWorkerId();
    const parts = new LocalParts();
    const relay = new PartsRelay({
      replica: workerId,
      publisher: pubsub,
      subscriber: pubsub,
      parts,
      metrics: chatMetrics,
      logger,
      // Viewers renew on every safety-net tick; three ticks without one and the viewer is gone.
      leaseMs: 3 * chatConfig.streamCheckIntervalMs,
    });
    parts.setTap(relay);
    await life.start('chat parts relay', () => relay.start(), (cancel) => cancel());
    const streams = new ChatStreams({
      store: seams.chatStreamStore?.(realStreamStore) ?? realStreamStore,
      subscriber: pubsub,
      parts,
      relay,
      workerId,
      logger,
      metrics: chatMetrics,
      controlReadTimeoutMs: chatConfig.controlReadTimeoutMs,
      checkIntervalMs: chatConfig.streamCheckIntervalMs,
      hooks: seams.chatStreamHooks,
    });
    life.defer('chat streams', () => streams.close());
    const worker = new ChatWorker({
      id: workerId,
      db,
      subscriber: pubsub,
      notifier,
      parts,
      configCache,
      providers: {
        fake: instrumentProvider(fakeProvider({ tokens: chatConfig.fakeTokens, delayMs: chatConfig.fakeTokenDelayMs }), 'fake', llmMetrics),
        'openai-compat': instrumentProvider(openaiCompatProvider({ timeoutMs: chatConfig.llmTimeoutMs }), 'openai-compat', llmMetrics),
      },
      metrics: chatMetrics,
      logger,
      listeners: [failedTurnLog(logger), ...(seams.turnEndListeners ?? []), ...(webpush ? [webpush.turnPush] : [])],
      config: chatConfig,
    });
    const chatService = new ChatService({ db, notifier, configCache, wake: () => worker.wake(), turns: worker });
    await chatService.seedDefaultModel(chatConfig);
    const pushWindow = webpush && (await life.start('push failure window', () => new PushWindow(webpush.metrics.dispatch), (w) => w.close()));
    const httpMetrics = createHttpMetrics(registry);
    const auth = await startAuth(db, pubsub, logger, life, config.apiKeyCacheDisabled ?? false, (n) => httpMetrics.socketsRevoked.inc(n));
    const models = new ModelAdmin({ db, publisher: pubsub, secrets, invalidate: () => configCache.invalidate() });
    const getChat = (id: string) => reads.getChatByID(id);

    const app = await buildApp({
      logger,
      metrics: httpMetrics,
      limits: config.http,
      sockets: auth.sockets,
      routes: [
        healthRoutes({
          ping: (signal) => ping(db, signal),
          registry: config.prometheusAddress ? undefined : registry,
          buildInfo: () => ({ version, ...(webpush ? { webpush_public_key: webpush.vapid.current.publicKey } : {}) }),
        }),
        authenticated((token) => auth.authenticator.authenticate(token), [
          userRoutes({ admin: auth.admin }),
          modelRoutes({ models }),
          debugRoutes({
            health: () =>
              daemonHealth({
                ping: (signal) => ping(db, signal),
                notifyQueueUsage: (signal) => notificationQueueUsage(db, signal),
                pubsub,
                poolStats: () => db.stats(),
                recentPushes: pushWindow && (() => pushWindow.recent()),
              }),
          }),
          underPrefixes([
            chatRoutes({ service: chatService, queueFront: new QueueFront({ db, notifier, publisher: pubsub, wake: () => worker.wake() }), getChat }),
            streamRoutes({
              streams,
              getChat,
              backlogBytes: chatConfig.streamBacklogBytes,
              metrics: httpMetrics,
              pingIntervalMs: config.http?.wsPingIntervalMs,
              presence: webpush?.presence,
            }),
          ]),
          ...(webpush ? [webpushRoutes({ service: webpush.service, allowInsecureEndpoints: config.webpush?.allowInsecureEndpoints ?? false, baseUrl })] : []),
        ], auth.sockets),
        consoleRoutes(),
      ],
    });
    // The worker stops after the HTTP server (stops run in reverse): turns may finish while requests drain, and
    // running turns go back to pending while the pool and pubsub still work.
    await life.start('chat worker', () => worker.start(), () => worker.close(grace));
    // Thousands of clients connecting at once overflowed Node's default accept queue (511) on a busy event loop,
    // and the kernel reset the connections it could not queue; the kernel caps this at net.core.somaxconn.
    await life.start('HTTP server', () => app.listen({ host: listen.host, port: listen.port, backlog: 4096 }), () => closeHttp(app, grace));
    const metricsUrl = config.prometheusAddress ? await life.start('metrics listener', () => serveMetrics(config.prometheusAddress!, registry), (m) => m.close()) : undefined;
    const addr = app.server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const url = `http://${host}:${addr.port}`;
    publicUrl ??= url;
    logger.info({ url, version, ...(metricsUrl ? { metricsUrl: metricsUrl.url } : {}) }, 'coder-lite is listening');
    // Browsers treat loopback as a secure context, so only a non-https, non-loopback access URL stops subscriptions.
    if (webpush && !isSecureContextUrl(config.accessUrl ?? url)) {
      logger.warn({ accessUrl: config.accessUrl ?? url }, 'web push: the access URL is not https; browsers only subscribe from secure contexts (localhost aside)');
    }

    return {
      url,
      metricsUrl: metricsUrl?.url,
      db,
      registry,
      app,
      pubsub,
      chats: { service: chatService, streams, parts, relay, worker, configCache, models },
      auth: { cache: auth.cache, sockets: auth.sockets, admin: auth.admin },
      webpush,
      databaseInfo: async () => ({ serverVersion: await getServerVersion(db), backendPid: await getBackendPid(db) }),
      fatal,
      close: (g?: AbortSignal) => {
        if (g) grace = g;
        else grace = AbortSignal.timeout(defaultShutdownGraceMs);
        return life.stop();
      },
    };
  });
}

/** One line per failed turn, with the chat: the reply the owner saw as last_error. */
function failedTurnLog(logger: Logger): TurnEndListener {
  return {
    turnEnded: (r) => {
      if (r.outcome === 'error') logger.warn({ chatId: r.chatId, ownerId: r.ownerId, model: r.model.model, lastError: r.lastError }, 'chat turn failed');
    },
  };
}

/**
 * Stops accepting and waits for in-flight requests; when `grace` ends first, cuts every connection still open
 * (fastify alone would wait for a slow upload, and keep-alive sockets up to their timeout).
 */
async function closeHttp(app: FastifyInstance, grace: AbortSignal): Promise<void> {
  const cut = () => app.server.closeAllConnections();
  if (grace.aborted) cut();
  else grace.addEventListener('abort', cut, { once: true });
  try {
    await app.close();
  } finally {
    grace.removeEventListener('abort', cut);
  }
}

/**
 * The API-key cache, the authenticator and the registry of open sockets. A revocation from any replica drops the key
 * from the cache and closes its sockets with 1008; after lost messages every open socket's key is checked again.
 */
async function startAuth(db: Database, pubsub: Pubsub, logger: Logger, life: Lifecycle, cacheDisabled: boolean, onClosed: (sockets: number) => void) {
  const cache = new APIKeyCache({ fetch: (id) => getAPIKeyWithUser(db, id), disabled: cacheDisabled });
  const authenticator = new Authenticator({ db, cache, logger });
  const sockets = new SocketRegistry();
  const closed = (n: number) => {
    if (n > 0) onClosed(n);
  };
  const recheck = async () => {
    for (const keyId of sockets.keys()) {
      const key = await cache.get(keyId);
      if (!key || key.user.suspendedAt || key.expiresAt.getTime() <= Date.now()) closed(sockets.revoke({ keyId }));
    }
  };
  const onRevoked = (r: Revocation) => {
    if (r !== 'all') return closed(sockets.revoke(r));
    sockets.revoke(r);
    recheck().catch((err: unknown) => logger.warn({ err }, 'auth: re-checking the keys of open sockets after lost notices failed'));
  };
  await life.start('API key cache', () => cache.start(pubsub, onRevoked), () => cache.close());
  const admin = new UserAdmin({ db, publisher: pubsub, cache });
  return { cache, authenticator, sockets, admin };
}

/** VAPID keys, subscription cache, dispatcher and the push after each turn. */
async function startWebpush(config: DaemonConfig, db: Database, pubsub: Pubsub, registry: Registry, life: Lifecycle, baseUrl: () => string) {
  const { logger } = config;
  const c = config.webpush ?? {};
  const subject = normalizeSubject(c.subject ?? (config.accessUrl?.startsWith('https:') ? config.accessUrl : 'mailto:webpush@coder-lite.invalid'));
  if (c.allowInsecureEndpoints) logger.warn('web push: --webpush-allow-insecure-endpoints is on: http and private-address endpoints are accepted (development only)');
  const metrics = createWebpushMetrics(registry);
  // Misses in the same moment (every owner's first push after a restart) are one read.
  const subscriptionReads = new StatementBatcher((userIds: string[]) => getWebpushSubscriptionsByUserIDs(db, userIds), { maxItems: 500 });
  const cache = new SubscriptionCache({ fetch: (userId) => subscriptionReads.submit(userId), metrics, disabled: c.subscriptionCacheDisabled });
  await life.start('web push subscription cache', () => cache.start(pubsub), () => cache.close());
  const vapid = new VapidKeyHolder(db);
  // A rotation deleted every subscription along with the old keys.
  await life.start(
    'VAPID keys',
    () =>
      vapid.start(pubsub, () => {
        cache.clear();
        logger.info('web push: VAPID keys rotated; using the new pair');
      }),
    () => vapid.close(),
  );
  const dispatcher = new PushDispatcher({
    tokens: new VapidTokenCache(vapid, subject),
    store: { deleteSubscriptions: (ids) => deleteWebpushSubscriptionsByIDs(db, ids), markSucceeded: (ids) => markWebpushSubscriptionsSucceeded(db, ids) },
    metrics,
    logger,
    concurrency: c.concurrency,
    timeoutMs: c.timeoutMs,
    allowPrivateAddresses: c.allowInsecureEndpoints,
    ttlSeconds: c.ttlSeconds,
    encryptor: c.encryptionThreads ? new EncryptPool(c.encryptionThreads) : undefined,
  });
  life.defer('web push dispatcher', () => dispatcher.close());
  const service = new WebpushService(db, cache, dispatcher, logger);
  life.defer('web push service', () => service.close());
  const presence = await life.start(
    'web push presence',
    async () => {
      const tracker = new PresenceTracker({ logger });
      await tracker.start(pubsub);
      return tracker;
    },
    (p) => p.close(),
  );
  const turnPush = new TurnPush({
    dispatch: (userId, message) => service.dispatchToUser(userId, message),
    logger,
    metrics,
    baseUrl,
    watching: (chatId, userId) => presence.isWatching(chatId, userId),
    uncachedReads: c.uncachedTurnPush ? coderLikeTurnReads(db) : undefined,
  });
  // Runs after the worker has stopped (stops run in reverse), so the last turns' pushes are sent.
  life.defer('pushes after turns', () => turnPush.drain());
  return { service, vapid, turnPush, presence, metrics, threadIds: () => dispatcher.threadIds() };
}

/** https, or plain http on loopback (which browsers also count as a secure context). */
function isSecureContextUrl(value: string): boolean {
  const { protocol, hostname } = new URL(value);
  if (protocol === 'https:') return true;
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127\./.test(host);
}
