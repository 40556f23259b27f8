import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';

import type { User } from '../../store/types.js';
import type { PushMessage } from '../../webpush/dispatcher.js';
import { endpointProblem } from '../../webpush/endpoint.js';
import type { WebpushService } from '../../webpush/service.js';
import { iconPath } from '../../webpush/turnPush.js';
import { ErrForbiddenUser, ErrInvalidEndpoint, ErrInvalidKey, ErrSubscriptionNotFound } from '../errors.js';
import { errorResponses } from '../schemas.js';

export interface WebpushRouteOptions {
  service: WebpushService;
  allowInsecureEndpoints: boolean;
  /** The URL users reach the console at: the test notification links there. */
  baseUrl: () => string;
}

/** Longest endpoint URL the API takes. */
export const maxEndpointChars = 2048;

const UserParams = Type.Object({ user: Type.String({ minLength: 1, maxLength: 100 }) });
const Base64url = Type.String({ pattern: '^[A-Za-z0-9_-]+={0,2}$', maxLength: 200 });
const Endpoint = Type.String({ minLength: 1, maxLength: maxEndpointChars });
const noContent = { 204: Type.Null(), ...errorResponses };

/** `{user}` is `me`, the caller's name or id; anyone else's subscriptions are out of reach. */
function ownUser(param: string, me: User): User {
  if (param === 'me' || param === me.id || param.toLowerCase() === me.username.toLowerCase()) return me;
  throw new ErrForbiddenUser();
}

function checkKey(name: string, value: string, bytes: number): void {
  const raw = Buffer.from(value, 'base64url');
  if (raw.length !== bytes || (bytes === 65 && raw[0] !== 4)) {
    throw new ErrInvalidKey({ args: [name], detail: bytes === 65 ? 'expected an uncompressed P-256 public key (65 bytes, base64url)' : `expected ${bytes} bytes, base64url` });
  }
}

/** The test notification has a tag of its own: a newer one replaces it, and it never replaces a chat's. */
const testMessage = (baseUrl: string): PushMessage => ({
  title: 'coder-lite',
  body: 'Push notifications are on.',
  navigate: new URL('/', baseUrl).href,
  icon: new URL(iconPath, baseUrl).href,
  tag: 'coder-lite-test',
});

/** Registered in the authenticated scope. */
export function webpushRoutes(opts: WebpushRouteOptions): FastifyPluginAsync {
  return async (plain) => {
    const app = plain.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/api/v2/users/:user/webpush/subscription',
      {
        schema: {
          params: UserParams,
          body: Type.Object({ endpoint: Endpoint, auth_key: Base64url, p256dh_key: Base64url }, { additionalProperties: false }),
          response: noContent,
        },
      },
      async (req, reply) => {
        const user = ownUser(req.params.user, req.user);
        const { endpoint, auth_key: authKey, p256dh_key: p256dhKey } = req.body;
        const problem = endpointProblem(endpoint, opts.allowInsecureEndpoints);
        if (problem) throw new ErrInvalidEndpoint({ detail: problem });
        checkKey('auth_key', authKey, 16);
        checkKey('p256dh_key', p256dhKey, 65);
        await opts.service.subscribe(user.id, { endpoint, authKey, p256dhKey }, testMessage(opts.baseUrl()));
        return reply.status(204).send(null);
      },
    );

    app.delete(
      '/api/v2/users/:user/webpush/subscription',
      { schema: { params: UserParams, body: Type.Object({ endpoint: Endpoint }, { additionalProperties: false }), response: noContent } },
      async (req, reply) => {
        const user = ownUser(req.params.user, req.user);
        if (!(await opts.service.unsubscribe(user.id, req.body.endpoint))) throw new ErrSubscriptionNotFound();
        return reply.status(204).send(null);
      },
    );

    app.post('/api/v2/users/:user/webpush/test', { schema: { params: UserParams, response: noContent } }, async (req, reply) => {
      const user = ownUser(req.params.user, req.user);
      await opts.service.dispatchToUser(user.id, testMessage(opts.baseUrl()));
      return reply.status(204).send(null);
    });
  };
}
