import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';

import type { Logger } from '../observability/logger.js';
import { wsProtocol } from './auth.js';
import { installErrorHandlers } from './errors.js';

export interface AppOptions {
  logger: Logger;
  routes: FastifyPluginAsync[];
  /** Maximum request body in bytes. */
  bodyLimit?: number;
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Per-request lines would drown the log under load; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimit ?? 256 * 1024,
    // Route params are ids and names: keep them short so a hostile URL costs nothing.
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  });
  installErrorHandlers(app);
  // Registered before the plugin so it runs before the plugin's own preClose (which closes with no code): clients
  // learn the server is going away (1001) and reconnect elsewhere.
  app.addHook('preClose', (done) => {
    for (const client of app.websocketServer?.clients ?? []) client.close(1001, 'server shutting down');
    done();
  });
  // Client frames are never large: the streams only send. A browser that offered the token subprotocol gets
  // `coder-lite` back (it refuses a socket that names none); the token itself is never echoed.
  await app.register(websocket, {
    options: { maxPayload: 64 * 1024, handleProtocols: (offered) => (offered.has(wsProtocol) ? wsProtocol : false) },
  });
  for (const route of opts.routes) await app.register(route);
  return app;
}
