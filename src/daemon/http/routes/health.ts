import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import { Type } from 'typebox';

import { retryAfterSeconds } from '../errors.js';

export interface HealthRouteOptions {
  /** Resolves when the database answers; rejects otherwise. */
  ping: (signal: AbortSignal) => Promise<void>;
  /** Absent when /metrics has a listener of its own (`--prometheus-address`). */
  registry?: Registry;
  buildInfo: () => { version: string; webpush_public_key?: string };
}

export function healthRoutes(opts: HealthRouteOptions): FastifyPluginAsync {
  return async (plain) => {
    const app = plain.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/healthz',
      {
        schema: {
          response: {
            200: Type.Object({ status: Type.Literal('ok') }),
            503: Type.Object({ status: Type.Literal('unavailable'), message: Type.String() }),
          },
        },
      },
      async (req, reply) => {
        try {
          await opts.ping(AbortSignal.timeout(2000));
          return { status: 'ok' as const };
        } catch (err) {
          req.log.warn({ err }, 'health check: database did not answer');
          return reply.status(503).header('retry-after', String(retryAfterSeconds)).send({ status: 'unavailable', message: 'database did not answer' });
        }
      },
    );
    // Prometheus text: a string with its own content type is sent as is, not serialized.
    const { registry } = opts;
    if (registry) {
      app.get('/metrics', { schema: { response: { 200: Type.String() } } }, async (_req, reply) => {
        reply.header('content-type', registry.contentType);
        return registry.metrics();
      });
    }
    app.get(
      '/api/v2/buildinfo',
      { schema: { response: { 200: Type.Object({ version: Type.String(), webpush_public_key: Type.Optional(Type.String()) }) } } },
      async () => opts.buildInfo(),
    );
  };
}
