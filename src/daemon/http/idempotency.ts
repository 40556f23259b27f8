import { hash } from 'node:crypto';

import type { FastifyReply, FastifyRequest } from 'fastify';

import type { IdempotentRequest, Outcome } from '../chat/service.js';
import type { StoredResponse } from '../store/idempotency.js';

export const idempotencyHeader = 'idempotency-key';

/**
 * The request's Idempotency-Key, when it sent one: the answer is stored with the work and a retry with the same key
 * gets it back. The fingerprint covers the route, its params and the body, so a reused key with another request is a 422.
 */
export function idempotentRequest<T>(req: FastifyRequest, render: (result: T) => StoredResponse): IdempotentRequest<T> | undefined {
  // The route's header schema (`IdempotencyHeaders`) has checked it: 1–255 printable ASCII characters.
  const key = req.headers[idempotencyHeader];
  if (typeof key !== 'string') return undefined;
  const fingerprint = hash('sha256', JSON.stringify([req.method, req.routeOptions.url, req.params, req.body]), 'base64url');
  return { key, fingerprint, render };
}

/** Sends the stored answer of a replayed request, or renders a fresh result. */
export function sendOutcome<T>(reply: FastifyReply, outcome: Outcome<T>, render: (result: T) => StoredResponse): FastifyReply {
  if (outcome.replay) return reply.header('idempotent-replayed', 'true').status(outcome.replay.status).send(outcome.replay.body);
  const { status, body } = render(outcome.result);
  return reply.status(status).send(body);
}
