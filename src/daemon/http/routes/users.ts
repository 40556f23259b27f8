import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';

import { errorResponses } from '../schemas.js';
import { Uuid } from '../validation.js';

/** Registered in the authenticated scope. */
export function userRoutes(): FastifyPluginAsync {
  return async (plain) => {
    const app = plain.withTypeProvider<TypeBoxTypeProvider>();
    const Me = Type.Object({ id: Uuid(), username: Type.String(), email: Type.Union([Type.String(), Type.Null()]), created_at: Type.String() });
    app.get('/api/v2/users/me', { schema: { response: { 200: Me, ...errorResponses } } }, async (req) => ({
      id: req.user.id,
      username: req.user.username,
      email: req.user.email,
      created_at: req.user.createdAt.toISOString(),
    }));
  };
}
