import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';

import type { User } from '../store/types.js';
import { HttpError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on authenticated routes. */
    user: User;
  }
}

export type Authenticator = (token: string) => Promise<User | undefined>;

function tokenFrom(req: FastifyRequest): string | undefined {
  const header = req.headers['coder-session-token'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice('Bearer '.length).trim();
  return undefined;
}

/**
 * An onRequest hook for routes that need a caller: `Coder-Session-Token: <token>` or `Authorization: Bearer <token>`.
 * Route plugins add it with `app.addHook('onRequest', requireAuth(authenticate))`.
 */
export function requireAuth(authenticate: Authenticator): onRequestHookHandler {
  return async (req: FastifyRequest, _reply: FastifyReply) => {
    const token = tokenFrom(req);
    if (!token) throw new HttpError(401, 'authentication required', 'send Coder-Session-Token or Authorization: Bearer');
    const user = await authenticate(token);
    if (!user) throw new HttpError(401, 'invalid or expired API token');
    req.user = user;
  };
}
