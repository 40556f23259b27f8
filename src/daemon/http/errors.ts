import type { FastifyError, FastifyInstance } from 'fastify';

import { DatabaseUnavailableError } from '../postgres/errors.js';

/** An error with an HTTP status and a message safe to show the caller. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new HttpError(404, `${what} not found`);

/**
 * Every error leaves as JSON `{message, detail?}`. Client mistakes that fastify detects (schema, JSON syntax,
 * content type, body size) keep their 4xx; anything unexpected is logged and answered with a bare 500.
 */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | HttpError | Error, req, reply) => {
    if (err instanceof HttpError) {
      return reply.status(err.statusCode).send({ message: err.message, ...(err.detail ? { detail: err.detail } : {}) });
    }
    if (err instanceof DatabaseUnavailableError) {
      req.log.warn({ err: err.message, cause: (err.cause as Error | undefined)?.message }, 'request failed: the database is unavailable');
      return reply.status(503).header('retry-after', '2').send({ message: 'the database is unavailable; retry shortly' });
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      return reply.status(400).send({ message: 'invalid request', detail: `${fe.validationContext ?? 'request'} ${fe.validation[0]?.instancePath ?? ''} ${fe.validation[0]?.message ?? ''}`.replace(/\s+/g, ' ').trim() });
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.status(fe.statusCode).send({ message: fe.message });
    }
    req.log.error({ err }, 'request failed');
    return reply.status(500).send({ message: 'internal server error' });
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send({ message: `no route for ${req.method} ${req.url.split('?')[0]}` }));
}
