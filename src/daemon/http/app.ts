import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';

import type { Logger } from '../observability/logger.js';
import { wsProtocol } from './auth.js';
import { ErrRouteNotFound, ErrTooManyConnections, installErrorHandlers } from './errors.js';
import type { HttpMetrics } from './metrics.js';
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
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, webSocketRoute: Boolean(route.websocket || route.wsHandler) };
  });
  // @fastify/websocket routes every upgrade through fastify; one for a plain route would be accepted and dropped.
  app.addHook('onRequest', async (req) => {
    if (req.ws && !req.routeOptions.config.webSocketRoute) throw new ErrRouteNotFound({ args: [`WebSocket ${req.url.split('?')[0]}`] });
  });
  for (const route of opts.routes) await app.register(route);
  return app;
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
