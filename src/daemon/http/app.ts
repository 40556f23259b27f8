import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { WebSocket } from 'ws';

import { version } from '../config.js';
import type { Logger } from '../observability/logger.js';
import { wsProtocol } from './auth.js';
import { ErrRouteNotFound, ErrTooManyConnections, installErrorHandlers } from './errors.js';
import type { HttpMetrics } from './metrics.js';
import type { SocketRegistry } from './sockets.js';
import { installBodyParser, installTextCheck, validatorCompiler } from './validation.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set for every route with a WebSocket handler; an upgrade anywhere else is answered 404. */
    webSocketRoute?: boolean;
  }
}

/** What one client may send and how long it may take; the README's HTTP section states the same figures. */
export interface HttpLimits {
  /** Request body, bytes (413 past it). */
  bodyLimit: number;
  /** All request headers together, bytes (431 past it, from Node's parser). */
  maxHeaderSize: number;
  /** From the first byte of a request to the end of its headers. */
  headersTimeoutMs: number;
  /** From the first byte of a request to the end of its body: a trickled body is cut here. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** How often Node checks the header and request timeouts (they are only as exact as this). */
  timeoutCheckIntervalMs: number;
  /** Open connections (WebSockets included); a request on one past the cap is answered 503. */
  maxConnections: number;
  /** A client WebSocket message, bytes (the streams only send; presence notes are tiny). */
  wsMaxPayload: number;
}

export const defaultHttpLimits: HttpLimits = {
  bodyLimit: 256 * 1024,
  maxHeaderSize: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 20_000,
  keepAliveTimeoutMs: 5_000,
  timeoutCheckIntervalMs: 1_000,
  maxConnections: 10_000,
  wsMaxPayload: 8 * 1024,
};

export interface AppOptions {
  logger: Logger;
  /** Route plugins, registered in order (the authenticated scope is one of them). */
  routes: FastifyPluginAsync[];
  metrics: HttpMetrics;
  limits?: Partial<HttpLimits>;
  /** Where the authenticated WebSockets are registered, so revocations can close them. */
  sockets?: Pick<SocketRegistry, 'attach'>;
}

/** The documented prefix of the chat API, and the one it started under, kept as an alias (hidden from the reference). */
export const apiPrefix = '/api/v2';
export const experimentalPrefix = '/api/experimental';

/** Registers route plugins under the documented prefix and under the alias, which stays out of the OpenAPI document. */
export function underPrefixes(routes: FastifyPluginAsync[]): FastifyPluginAsync {
  return async (app) => {
    for (const prefix of [apiPrefix, experimentalPrefix]) {
      await app.register(
        async (scope) => {
          if (prefix === experimentalPrefix) scope.addHook('onRoute', (route) => void (route.schema = { ...route.schema, hide: true }));
          for (const route of routes) await scope.register(route);
        },
        { prefix },
      );
    }
  };
}

const isProtocolError = (err: unknown) => typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('WS_ERR_');

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const limits = { ...defaultHttpLimits, ...opts.limits };
  const app = Fastify({
    loggerInstance: opts.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Per-request lines would drown the log under load; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.bodyLimit,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // No socket inactivity timeout on top: the header and request timeouts and keep-alive bound every phase of a
    // connection; a 30 s inactivity timer made the console's service-worker tests in Chromium lose pushes.
    http: { maxHeaderSize: limits.maxHeaderSize, headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: limits.timeoutCheckIntervalMs },
    // Route params are ids and names: keep them short so a hostile URL costs nothing.
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    clientErrorHandler: answerClientError,
  });
  app.setValidatorCompiler(validatorCompiler);
  // Before any route: the document is collected from each route's schema as it is added.
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'coder-lite API', version, description: 'Chats, their streams, users and tokens, web push. `/api/experimental/chats…` is an alias of `/api/v2/chats…`.' },
      components: {
        securitySchemes: {
          sessionToken: { type: 'apiKey', in: 'header', name: 'Coder-Session-Token' },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
      security: [{ sessionToken: [] }, { bearer: [] }],
    },
    transform: ({ schema, url }) => ({ schema: schema && withOptionalDefaults(schema), url }),
  });
  installErrorHandlers(app);
  installBodyParser(app);
  installTextCheck(app);
  installConnectionCap(app, limits.maxConnections, opts.metrics);
  // Registered before the plugin so it runs before the plugin's own preClose (which closes with no code): clients
  // learn the server is going away (1001) and reconnect elsewhere.
  app.addHook('preClose', (done) => {
    for (const client of app.websocketServer?.clients ?? []) client.close(1001, 'server shutting down');
    done();
  });
  // Client frames are never large: the streams only send. A browser that offered the token subprotocol gets
  // `coder-lite` back (it refuses a socket that names none); the token itself is never echoed.
  await app.register(websocket, {
    options: { maxPayload: limits.wsMaxPayload, handleProtocols: (offered) => (offered.has(wsProtocol) ? wsProtocol : false) },
    // Errors on an open socket are the client's (bad frames, oversized messages): counted, logged at debug.
    errorHandler: (err, socket, req) => {
      if (isProtocolError(err)) {
        opts.metrics.wsProtocolErrors.inc();
        req.log.debug({ err }, 'websocket: client protocol error');
      } else req.log.warn({ err }, 'websocket: socket error');
      socket.terminate();
    },
  });
  closeRefusedUpgrades(app, limits.requestTimeoutMs);
  installRequestMetrics(app, opts.metrics);
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, webSocketRoute: Boolean(route.websocket || route.wsHandler) };
  });
  // @fastify/websocket routes every upgrade through fastify; one for a plain route would be accepted and dropped.
  app.addHook('onRequest', async (req) => {
    if (req.ws && !req.routeOptions.config.webSocketRoute) throw new ErrRouteNotFound({ args: [`WebSocket ${req.url.split('?')[0]}`] });
  });
  opts.sockets?.attach(app.websocketServer);
  for (const route of opts.routes) await app.register(route);
  app.get('/api/v2/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // swagger-ui serves its own bundle from the package: the page works offline, under its own CSP.
  await app.register(swaggerUi, {
    routePrefix: '/api/v2/docs',
    // swagger-ui's default policy says upgrade-insecure-requests, which breaks the page on a plain-http address.
    staticCSP: "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; frame-ancestors 'self'",
  });
  return app;
}

/**
 * Coder's request metrics by route template (never the raw URL, so ids do not explode the label set), and one debug
 * line per request; failures have their own line from the error handler.
 */
function installRequestMetrics(app: FastifyInstance, metrics: HttpMetrics): void {
  const wsPaths = new WeakMap<IncomingMessage, string>();
  app.addHook('onRequest', async (req) => {
    if (req.ws) wsPaths.set(req.raw, req.routeOptions.url ?? 'unmatched');
    else metrics.concurrentRequests.inc();
  });
  app.addHook('onResponse', async (req, reply) => {
    if (req.ws) return;
    metrics.concurrentRequests.dec();
    const path = req.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    metrics.requestsProcessed.inc({ code: String(reply.statusCode), method: req.method, path });
    metrics.requestLatency.observe({ method: req.method, path }, seconds);
    req.log.debug({ method: req.method, path, url: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
  });
  app.websocketServer.on('connection', (ws: WebSocket, raw: IncomingMessage) => {
    const path = wsPaths.get(raw) ?? 'unmatched';
    const started = performance.now();
    metrics.concurrentWebsockets.inc();
    metrics.requestsProcessed.inc({ code: '101', method: 'GET', path });
    ws.once('close', () => {
      metrics.concurrentWebsockets.dec();
      metrics.websocketDuration.observe({ path }, (performance.now() - started) / 1000);
    });
  });
}

/**
 * A query parameter with a default is optional to the client (the validator fills it in), though TypeBox lists it as
 * required: the document says what a client must send.
 */
function withOptionalDefaults<S extends { querystring?: unknown }>(schema: S): S {
  const qs = schema.querystring as { required?: string[]; properties?: Record<string, { default?: unknown }> } | undefined;
  if (!qs?.required || !qs.properties) return schema;
  return { ...schema, querystring: { ...qs, required: qs.required.filter((k) => qs.properties![k]?.default === undefined) } };
}

/**
 * Node's parser refused the request (a bad method, request line or header; headers too large; the request timeout).
 * The answer says `Connection: close`, as the socket is closed after it: without it a keep-alive client would send
 * its next request into the closed socket.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, message] =
    err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'request headers too large'] : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request timed out'] : [400, 'malformed HTTP request'];
  const body = JSON.stringify({ message });
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`;
  socket.end(head + body, () => socket.destroy());
}

/**
 * Node stops timing a socket out once it is handed over as an upgrade, and an upgrade refused before routing (a bad
 * URL) or answered 404 leaves it open after the answer. Until the WebSocket is established, a client that hangs up
 * is hung up on, and one that neither upgrades nor leaves is cut after the request timeout.
 */
function closeRefusedUpgrades(app: FastifyInstance, timeoutMs: number): void {
  const pending = new WeakMap<IncomingMessage, () => void>();
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    const hangUp = () => socket.destroy();
    const timer = setTimeout(hangUp, timeoutMs).unref();
    socket.once('end', hangUp);
    socket.once('close', () => clearTimeout(timer));
    pending.set(req, () => {
      clearTimeout(timer);
      socket.removeListener('end', hangUp);
    });
  });
  app.websocketServer.on('connection', (_ws: unknown, req: IncomingMessage) => pending.get(req)?.());
}

/**
 * Past `max` open connections a request is answered 503 with Retry-After and `Connection: close` at once, instead
 * of queueing behind the others; connections that never send a request are closed by the header timeout.
 */
function installConnectionCap(app: FastifyInstance, max: number, metrics: HttpMetrics): void {
  let open = 0;
  const overCap = new WeakSet<Socket>();
  app.server.on('connection', (socket: Socket) => {
    if (++open > max) overCap.add(socket);
    socket.once('close', () => open--);
  });
  app.addHook('onRequest', async (req) => {
    if (!overCap.has(req.raw.socket)) return;
    metrics.connectionsRefused.inc();
    throw new ErrTooManyConnections();
  });
}
