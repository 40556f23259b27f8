import type { FastifyPluginAsync, FastifyRequest } from 'fastify';

import type { User } from '../../store/types.js';
import type { PushMessage } from '../../webpush/dispatcher.js';
import { endpointProblem } from '../../webpush/endpoint.js';
import { SubscriptionRejectedError, type WebpushService } from '../../webpush/service.js';
import { iconPath } from '../../webpush/turnPush.js';
import { requireAuth, type Authenticator } from '../auth.js';
import { HttpError } from '../errors.js';

export interface WebpushRouteOptions {
  authenticate: Authenticator;
  service: WebpushService;
  allowInsecureEndpoints: boolean;
  /** The URL users reach the console at: the test notification links there. */
  baseUrl: () => string;
}

const userParams = { type: 'object', required: ['user'], properties: { user: { type: 'string', minLength: 1, maxLength: 100 } } } as const;
const base64url = { type: 'string', pattern: '^[A-Za-z0-9_-]+={0,2}$', maxLength: 200 } as const;

/** `{user}` is `me`, the caller's name or id; anyone else's subscriptions are out of reach. */
function ownUser(req: FastifyRequest): User {
  const { user } = req.params as { user: string };
  const me = req.user;
  if (user === 'me' || user === me.id || user.toLowerCase() === me.username.toLowerCase()) return me;
  throw new HttpError(403, "you can only manage your own push subscriptions");
}

function checkKey(name: string, value: string, bytes: number): void {
  const raw = Buffer.from(value, 'base64url');
  if (raw.length !== bytes || (bytes === 65 && raw[0] !== 4)) {
    throw new HttpError(400, `invalid ${name}`, bytes === 65 ? 'expected an uncompressed P-256 public key (65 bytes, base64url)' : `expected ${bytes} bytes, base64url`);
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

export function webpushRoutes(opts: WebpushRouteOptions): FastifyPluginAsync {
  return async (app) => {
    app.addHook('onRequest', requireAuth(opts.authenticate));

    app.post(
      '/api/v2/users/:user/webpush/subscription',
      {
        schema: {
          params: userParams,
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['endpoint', 'auth_key', 'p256dh_key'],
            properties: { endpoint: { type: 'string', minLength: 1, maxLength: 2048 }, auth_key: base64url, p256dh_key: base64url },
          },
        },
      },
      async (req, reply) => {
        const user = ownUser(req);
        const body = req.body as { endpoint: string; auth_key: string; p256dh_key: string };
        const problem = endpointProblem(body.endpoint, opts.allowInsecureEndpoints);
        if (problem) throw new HttpError(400, 'invalid endpoint', problem);
        checkKey('auth_key', body.auth_key, 16);
        checkKey('p256dh_key', body.p256dh_key, 65);
        try {
          await opts.service.subscribe(user.id, { endpoint: body.endpoint, authKey: body.auth_key, p256dhKey: body.p256dh_key }, testMessage(opts.baseUrl()));
        } catch (err) {
          if (err instanceof SubscriptionRejectedError) throw new HttpError(400, 'the subscription did not accept a test notification', err.message);
          throw err;
        }
        return reply.status(204).send();
      },
    );

    app.delete(
      '/api/v2/users/:user/webpush/subscription',
      {
        schema: {
          params: userParams,
          body: { type: 'object', additionalProperties: false, required: ['endpoint'], properties: { endpoint: { type: 'string', minLength: 1, maxLength: 2048 } } },
        },
      },
      async (req, reply) => {
        const user = ownUser(req);
        if (!(await opts.service.unsubscribe(user.id, (req.body as { endpoint: string }).endpoint))) throw new HttpError(404, 'push subscription not found');
        return reply.status(204).send();
      },
    );

    app.post('/api/v2/users/:user/webpush/test', { schema: { params: userParams } }, async (req, reply) => {
      const user = ownUser(req);
      await opts.service.dispatchToUser(user.id, testMessage(opts.baseUrl()));
      return reply.status(204).send();
    });
  };
}
