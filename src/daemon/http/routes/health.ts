import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';

export interface HealthRouteOptions {
  /** Resolves when the database answers; rejects otherwise. */
  ping: (signal: AbortSignal) => Promise<void>;
  registry: Registry;
  buildInfo: () => Record<string, unknown>;
}

export function healthRoutes(opts: HealthRouteOptions): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', async (req, reply) => {
      try {
        await opts.ping(AbortSignal.timeout(2000));
        return { status: 'ok' };
      } catch (err) {
        req.log.warn({ err }, 'health check: database did not answer');
        return reply.status(503).send({ status: 'unavailable', message: 'database did not answer' });
      }
    });
    app.get('/metrics', async (_req, reply) => {
      reply.header('content-type', opts.registry.contentType);
      return opts.registry.metrics();
    });
    app.get('/api/v2/buildinfo', async () => opts.buildInfo());
  };
}
