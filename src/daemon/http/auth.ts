import type { FastifyPluginAsync, FastifyRequest } from 'fastify';

import type { Chat, User } from '../store/types.js';
import type { AuthResult } from '../users/service.js';
import { ErrAuthRequired, ErrInvalidToken, ErrUserSuspended } from './errors.js';
import type { SocketRegistry } from './sockets.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller: set by the auth hook of the authenticated scope, so every route registered there has one. */
    user: User;
    /** The id of the API key the caller authenticated with. */
    apiKeyId: string;
    /** The caller's own chat on `/chats/:chat` routes (set by `loadChat`). */
    chat: Chat;
  }
}

export type Authenticator = (token: string) => Promise<AuthResult>;

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
 * The authenticated scope: one `onRequest` hook for every route plugin registered in it, so a route is
 * authenticated by where it is registered. `Coder-Session-Token: <token>`, `Authorization: Bearer <token>` or,
 * on a WebSocket, the token subprotocol above.
 */
export function authenticated(authenticate: Authenticator, routes: FastifyPluginAsync[], sockets?: Pick<SocketRegistry, 'noteRequest'>): FastifyPluginAsync {
  return async (app) => {
    // Declared up front so every request has the same shape (fastify's advice); the hook fills them in.
    app.decorateRequest<User | null>('user', null);
    app.decorateRequest<Chat | null>('chat', null);
    app.decorateRequest('apiKeyId', '');
    app.addHook('onRequest', async (req) => {
      const token = tokenFrom(req);
      if (!token) throw new ErrAuthRequired({ detail: 'send Coder-Session-Token or Authorization: Bearer' });
      const auth = await authenticate(token);
      if (!auth.ok) throw auth.reason === 'suspended' ? new ErrUserSuspended() : new ErrInvalidToken();
      req.user = auth.user;
      req.apiKeyId = auth.keyId;
      // An upgrade becomes a socket that a revocation of this key or user closes.
      if (req.ws) sockets?.noteRequest(req.raw, auth.user.id, auth.keyId, auth.expiresAt);
    });
    for (const route of routes) await app.register(route);
  };
}
