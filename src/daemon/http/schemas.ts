import { Type } from 'typebox';

import { Uuid } from './validation.js';

/** Response shapes shared by the routes (DESIGN §4); the JSON builders in chat/events.ts fill them. */

export const ErrorBody = Type.Object({ message: Type.String(), detail: Type.Optional(Type.String()) });

/** The client errors a route may answer; 503 when the database is away. */
export const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  413: ErrorBody,
  422: ErrorBody,
  415: ErrorBody,
  426: ErrorBody,
  503: ErrorBody,
};

const ChatStatus = Type.Union([Type.Literal('waiting'), Type.Literal('pending'), Type.Literal('running'), Type.Literal('error')]);

export const ChatBody = Type.Object({
  id: Uuid(),
  owner_id: Uuid(),
  title: Type.String(),
  status: ChatStatus,
  last_error: Type.Union([Type.String(), Type.Null()]),
  last_model_config_id: Type.Union([Uuid(), Type.Null()]),
  archived: Type.Boolean(),
  created_at: Type.String(),
  updated_at: Type.String(),
});

export const MessageBody = Type.Object({
  id: Type.Integer(),
  chat_id: Uuid(),
  role: Type.Union([Type.Literal('user'), Type.Literal('assistant')]),
  content: Type.String(),
  created_at: Type.String(),
});

export const QueuedBody = Type.Object({ id: Type.Integer(), content: Type.String(), created_at: Type.String() });

/** An optional `Idempotency-Key` (printable ASCII, no space): the create and send routes accept it. */
export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' })),
});
