import { format } from 'node:util';

import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';

import { ModelResolutionError } from '../chat/configCache.js';
import { ModelConflictError, ModelInputError, ModelNotFoundError } from '../chat/models.js';
import { QueuedMessageNotFoundError } from '../chat/queueFront.js';
import { ChatArchivedError, ChatGoneError, IdempotencyMismatchError, QueueFullError } from '../chat/service.js';
import { ChatNotFoundError } from '../chat/stream.js';
import { DatabaseUnavailableError } from '../postgres/errors.js';
import { APIKeyNotFoundError, UserConflictError, UserInputError, UserNotFoundError } from '../users/service.js';
import { SubscriptionRejectedError } from '../webpush/service.js';

export interface ApiErrorOptions extends ErrorOptions {
  /** Safe to show the caller: what exactly was wrong. */
  detail?: string;
  /** Fill the `%s` of the message, as `util.format` does. */
  args?: string[];
}

/** An error the API answers with: a stable code, an HTTP status and a message safe to show the caller. */
export class ApiError extends Error {
  readonly detail?: string;

  constructor(
    readonly code: string,
    readonly statusCode: number,
    message: string,
    opts: ApiErrorOptions = {},
    /** Headers the reply carries (Retry-After, Upgrade). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(format(message, ...(opts.args ?? [])), opts);
    this.name = 'ApiError';
    this.detail = opts.detail;
  }
}

/** Every error the API answers with is defined here once, as fastify's lib/errors.js does. */
function defineError(code: string, statusCode: number, message: string, headers?: Record<string, string>) {
  return class extends ApiError {
    static readonly code = code;
    constructor(opts?: ApiErrorOptions) {
      super(code, statusCode, message, opts, headers);
    }
  };
}

/** Seconds a client waits before retrying a 503: long enough for a pool reconnect, short enough not to idle. */
export const retryAfterSeconds = 2;

export const ErrAuthRequired = defineError('AUTH_REQUIRED', 401, 'authentication required');
export const ErrInvalidToken = defineError('INVALID_TOKEN', 401, 'invalid or expired API token');
export const ErrUserSuspended = defineError('USER_SUSPENDED', 401, 'the user is suspended');
export const ErrAdminRequired = defineError('ADMIN_REQUIRED', 403, 'this needs an admin');
export const ErrForbiddenOtherUser = defineError('FORBIDDEN_OTHER_USER', 403, "only an admin can manage another user's %s");
export const ErrUserNotFound = defineError('USER_NOT_FOUND', 404, 'user not found');
export const ErrAPIKeyNotFound = defineError('API_KEY_NOT_FOUND', 404, 'API key not found');
export const ErrModelConfigNotFound = defineError('MODEL_NOT_FOUND', 404, 'model config or provider not found');
export const ErrConflict = defineError('CONFLICT', 409, 'conflict');
export const ErrForbiddenUser = defineError('FORBIDDEN_USER', 403, 'you can only manage your own push subscriptions');
export const ErrInvalidRequest = defineError('INVALID_REQUEST', 400, 'invalid request');
export const ErrInvalidText = defineError('INVALID_TEXT', 400, 'invalid text');
export const ErrInvalidModelConfig = defineError('INVALID_MODEL_CONFIG', 400, 'invalid model_config_id');
export const ErrInvalidEndpoint = defineError('INVALID_ENDPOINT', 400, 'invalid endpoint');
export const ErrInvalidKey = defineError('INVALID_KEY', 400, 'invalid %s');
export const ErrSubscriptionRejected = defineError('SUBSCRIPTION_REJECTED', 400, 'the subscription did not accept a test notification');
export const ErrChatNotFound = defineError('CHAT_NOT_FOUND', 404, 'chat not found');
export const ErrSubscriptionNotFound = defineError('SUBSCRIPTION_NOT_FOUND', 404, 'push subscription not found');
export const ErrQueuedNotFound = defineError('QUEUED_MESSAGE_NOT_FOUND', 404, 'queued message not found');
export const ErrAssetNotFound = defineError('ASSET_NOT_FOUND', 404, 'asset not found');
export const ErrRouteNotFound = defineError('ROUTE_NOT_FOUND', 404, 'no route for %s');
export const ErrQueueFull = defineError('QUEUE_FULL', 409, 'the chat queue is full');
export const ErrChatArchived = defineError('CHAT_ARCHIVED', 409, 'the chat is archived');
export const ErrIdempotencyMismatch = defineError('IDEMPOTENCY_MISMATCH', 422, 'the Idempotency-Key was used for a different request');
export const ErrUpgradeRequired = defineError('UPGRADE_REQUIRED', 426, 'this route speaks WebSocket only', { upgrade: 'websocket', connection: 'Upgrade' });
export const ErrTooManyConnections = defineError('TOO_MANY_CONNECTIONS', 503, 'the server has too many open connections', {
  'retry-after': String(retryAfterSeconds),
  connection: 'close',
});
export const ErrDatabaseUnavailable = defineError('DATABASE_UNAVAILABLE', 503, 'the database is unavailable; retry shortly', {
  'retry-after': String(retryAfterSeconds),
});

/** Errors of the layers below, as the API answers them; their own message becomes the detail. */
const domainErrors: Array<[new (...args: never[]) => Error, new (opts?: ApiErrorOptions) => ApiError]> = [
  [QueueFullError, ErrQueueFull],
  [ModelResolutionError, ErrInvalidModelConfig],
  [ChatGoneError, ErrChatNotFound],
  [ChatNotFoundError, ErrChatNotFound],
  [ChatArchivedError, ErrChatArchived],
  [IdempotencyMismatchError, ErrIdempotencyMismatch],
  [SubscriptionRejectedError, ErrSubscriptionRejected],
  [UserInputError, ErrInvalidRequest],
  [UserConflictError, ErrConflict],
  [UserNotFoundError, ErrUserNotFound],
  [APIKeyNotFoundError, ErrAPIKeyNotFound],
  [ModelInputError, ErrInvalidRequest],
  [ModelNotFoundError, ErrModelConfigNotFound],
  [ModelConflictError, ErrConflict],
  [QueuedMessageNotFoundError, ErrQueuedNotFound],
];

/** The API error an error is answered with, or undefined for a bug (a 500). */
function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof DatabaseUnavailableError) return new ErrDatabaseUnavailable({ cause: err });
  if (!(err instanceof Error)) return undefined;
  for (const [from, to] of domainErrors) if (err instanceof from) return new to({ detail: err.message, cause: err });
  const fe = err as FastifyError;
  if (fe.validation) {
    const first = fe.validation[0];
    const detail = `${fe.validationContext ?? 'request'} ${first?.instancePath ?? ''} ${first?.message ?? ''}`.replace(/\s+/g, ' ').trim();
    return new ErrInvalidRequest({ detail, cause: err });
  }
  // fastify's own client errors (FST_ERR_CTP_*: content type, JSON syntax, body size; FST_ERR_BAD_URL) keep status and code.
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new ApiError(fe.code ?? 'INVALID_REQUEST', fe.statusCode, fe.message, { cause: err });
  }
  return undefined;
}

function sendApiError(reply: FastifyReply, e: ApiError): FastifyReply {
  return reply
    .status(e.statusCode)
    .headers(e.headers)
    .send({ message: e.message, ...(e.detail ? { detail: e.detail } : {}) });
}

/**
 * The one error handler: routes throw, this maps. Every error leaves as JSON `{message, detail?}`; client mistakes
 * are 4xx and logged at debug, an unavailable database is 503 with Retry-After, anything else is a bug: logged, 500.
 */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req, reply) => {
    const e = toApiError(err);
    if (!e) {
      req.log.error({ err }, 'request failed');
      return reply.status(500).send({ message: 'internal server error' });
    }
    if (e.statusCode >= 500) req.log.warn({ err, code: e.code }, 'request failed: service unavailable');
    else req.log.debug({ code: e.code, detail: e.detail }, 'request refused');
    return sendApiError(reply, e);
  });
  app.setNotFoundHandler((req) => {
    throw new ErrRouteNotFound({ args: [`${req.method} ${req.url.split('?')[0]}`] });
  });
}
