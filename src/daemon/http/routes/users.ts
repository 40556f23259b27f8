import type { FastifyPluginAsync } from 'fastify';

import { requireAuth, type Authenticator } from '../auth.js';

export function userRoutes(authenticate: Authenticator): FastifyPluginAsync {
  return async (app) => {
    app.addHook('onRequest', requireAuth(authenticate));
    app.get('/api/v2/users/me', async (req) => ({
      id: req.user.id,
      username: req.user.username,
      email: req.user.email,
      created_at: req.user.createdAt.toISOString(),
    }));
  };
}
