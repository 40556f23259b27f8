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

/**
 * Browsers cannot set headers on a WebSocket, and a cookie would let other sites' pages open one: the web console
 * offers `coder-lite` plus `coder-lite.token.<token>` as subprotocols, and the server answers with `coder-lite`.
 */
export const wsProtocol = 'coder-lite';
const wsTokenPrefix = `${wsProtocol}.token.`;

function tokenFrom(req: FastifyRequest): string | undefined {
  const header = req.headers['coder-session-token'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice('Bearer '.length).trim();
  const protocols = req.headers['sec-websocket-protocol'];
  const offered = protocols?.split(',').map((p) => p.trim()).find((p) => p.startsWith(wsTokenPrefix));
  if (offered) return offered.slice(wsTokenPrefix.length);
  return undefined;
}

/**
 * An onRequest hook for routes that need a caller: `Coder-Session-Token: <token>` or `Authorization: Bearer <token>`
 * (or, on a WebSocket, the token subprotocol above).
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
