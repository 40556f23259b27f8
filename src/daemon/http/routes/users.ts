import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type } from 'typebox';

import type { User } from '../../store/types.js';
import { tokenJson, userJson } from '../../users/json.js';
import { maxTokenLifetimeSeconds, type UserAdmin } from '../../users/service.js';
import { ErrAdminRequired, ErrConflict, ErrForbiddenOtherUser } from '../errors.js';
import { errorResponses } from '../schemas.js';
import { Uuid } from '../validation.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The `{user}` of a `/users/{user}/…` route, once the caller may act on it (set by `loadTargetUser`). */
    targetUser: User;
  }
}

export interface UserRouteOptions {
  admin: UserAdmin;
}

const UserBody = Type.Object({
  id: Uuid(),
  username: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  is_admin: Type.Boolean(),
  status: Type.Union([Type.Literal('active'), Type.Literal('suspended')]),
  created_at: Type.String(),
});

const TokenBody = Type.Object({
  id: Type.String(),
  name: Type.String(),
  created_at: Type.String(),
  last_used_at: Type.Union([Type.String(), Type.Null()]),
  expires_at: Type.String(),
});

/** `me`, a user id or a username. */
const UserRef = Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9-_.]{0,63}$', maxLength: 64, description: '`me`, a user id or a username' });
const UserParams = Type.Object({ user: UserRef });
const KeyParams = Type.Object({ user: UserRef, keyid: Type.String({ pattern: '^[a-z0-9]{10}$' }) });

export const requireAdmin = async (req: FastifyRequest) => {
  if (!req.user.isAdmin) throw new ErrAdminRequired();
};

/** A user manages themselves; an admin manages anyone. A non-admin learns nothing about other users (403 for all). */
function loadTargetUser(admin: UserAdmin, what: string) {
  return async (req: FastifyRequest) => {
    const ref = (req.params as { user: string }).user;
    const self = ref === 'me' || ref === req.user.id || ref.toLowerCase() === req.user.username.toLowerCase();
    if (self) {
      req.targetUser = req.user;
      return;
    }
    if (!req.user.isAdmin) throw new ErrForbiddenOtherUser({ args: [what] });
    req.targetUser = await admin.findUser(ref);
  };
}

const notSelf = (req: FastifyRequest, what: string) => {
  if (req.targetUser.id === req.user.id) throw new ErrConflict({ detail: `you cannot ${what} yourself` });
};

/** Users and their API tokens (Coder's `/users/{user}/keys/tokens`). Registered in the authenticated scope. */
export function userRoutes(opts: UserRouteOptions): FastifyPluginAsync {
  const { admin } = opts;
  return async (plain) => {
    const app = plain.withTypeProvider<TypeBoxTypeProvider>();
    app.decorateRequest<User | null>('targetUser', null);
    const adminOnly = { preHandler: requireAdmin };
    const target = (what: string) => ({ preHandler: loadTargetUser(admin, what) });
    const adminTarget = { preHandler: [requireAdmin, loadTargetUser(admin, 'account')] };

    app.get('/api/v2/users/me', { schema: { response: { 200: UserBody, ...errorResponses } } }, async (req) => userJson(req.user));

    app.get('/api/v2/users', { schema: { response: { 200: Type.Object({ users: Type.Array(UserBody) }), ...errorResponses } }, ...adminOnly }, async () => ({
      users: (await admin.listUsers()).map(userJson),
    }));

    app.post(
      '/api/v2/users',
      {
        schema: {
          body: Type.Object(
            { username: Type.String({ minLength: 1, maxLength: 32 }), email: Type.Optional(Type.String({ maxLength: 320 })), admin: Type.Optional(Type.Boolean()) },
            { additionalProperties: false },
          ),
          response: { 201: UserBody, ...errorResponses },
        },
        ...adminOnly,
      },
      async (req, reply) => {
        const user = await admin.createUser(req.body.username, { email: req.body.email, admin: req.body.admin });
        return reply.status(201).send(userJson(user));
      },
    );

    app.get('/api/v2/users/:user', { schema: { params: UserParams, response: { 200: UserBody, ...errorResponses } }, ...target('account') }, async (req) =>
      userJson(req.targetUser),
    );

    app.delete('/api/v2/users/:user', { schema: { params: UserParams, response: { 204: Type.Null(), ...errorResponses } }, ...adminTarget }, async (req, reply) => {
      notSelf(req, 'delete');
      await admin.deleteUser(req.targetUser);
      return reply.status(204).send(null);
    });

    for (const [action, suspended] of [
      ['suspend', true],
      ['activate', false],
    ] as const) {
      app.put(`/api/v2/users/:user/status/${action}`, { schema: { params: UserParams, response: { 200: UserBody, ...errorResponses } }, ...adminTarget }, async (req) => {
        if (suspended) notSelf(req, 'suspend');
        return userJson(await admin.setSuspended(req.targetUser, suspended));
      });
    }

    app.get(
      '/api/v2/users/:user/keys/tokens',
      { schema: { params: UserParams, response: { 200: Type.Object({ tokens: Type.Array(TokenBody) }), ...errorResponses } }, ...target('tokens') },
      async (req) => ({ tokens: (await admin.listTokens(req.targetUser)).map(tokenJson) }),
    );

    app.post(
      '/api/v2/users/:user/keys/tokens',
      {
        schema: {
          params: UserParams,
          body: Type.Object(
            {
              token_name: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
              lifetime_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: maxTokenLifetimeSeconds })),
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Object({ ...TokenBody.properties, key: Type.String({ description: 'The token; shown only in this answer.' }) }), ...errorResponses },
        },
        ...target('tokens'),
      },
      async (req, reply) => {
        const { key, token } = await admin.createToken(req.targetUser, { name: req.body.token_name, lifetimeSeconds: req.body.lifetime_seconds });
        return reply.status(201).send({ ...tokenJson(key), key: token });
      },
    );

    app.delete(
      '/api/v2/users/:user/keys/:keyid',
      { schema: { params: KeyParams, response: { 204: Type.Null(), ...errorResponses } }, ...target('tokens') },
      async (req, reply) => {
        await admin.revokeToken(req.targetUser, req.params.keyid);
        return reply.status(204).send(null);
      },
    );
  };
}
