import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';

import type { HealthReport } from '../../health/report.js';
import { errorResponses } from '../schemas.js';
import { requireAdmin } from './users.js';

export interface DebugRouteOptions {
  health: () => Promise<HealthReport>;
}

const Severity = Type.Union([Type.Literal('ok'), Type.Literal('warning'), Type.Literal('error')]);
const HealthBody = Type.Object({
  severity: Severity,
  checked_at: Type.String(),
  checks: Type.Array(
    Type.Object({
      name: Type.Union([Type.Literal('database'), Type.Literal('pubsub'), Type.Literal('notify_queue'), Type.Literal('pool'), Type.Literal('webpush')]),
      severity: Severity,
      message: Type.String(),
      value: Type.Optional(Type.Number()),
    }),
  ),
});

/** Admin only: the health report `coder-lite doctor --url` prints. Always 200: the severity is in the body. */
export function debugRoutes(opts: DebugRouteOptions): FastifyPluginAsync {
  return async (plain) => {
    const app = plain.withTypeProvider<TypeBoxTypeProvider>();
    app.get('/api/v2/debug/health', { schema: { response: { 200: HealthBody, ...errorResponses } }, preHandler: requireAdmin }, async () => opts.health());
  };
}
