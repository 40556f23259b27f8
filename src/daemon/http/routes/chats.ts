import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type } from 'typebox';

import { chatJson, messageJson, queuedJson } from '../../chat/events.js';
import type { QueueFront } from '../../chat/queueFront.js';
import type { ChatService, SendResult } from '../../chat/service.js';
import type { Chat } from '../../store/types.js';
import { ErrChatArchived, ErrChatNotFound, ErrInvalidRequest, ErrQueuedNotFound } from '../errors.js';
import { idempotentRequest, sendOutcome } from '../idempotency.js';
import { ChatBody, errorResponses, IdempotencyHeaders, MessageBody, QueuedBody } from '../schemas.js';
import { Uuid } from '../validation.js';

export interface ChatRouteOptions {
  service: ChatService;
  /** Promote and `busy_behavior: "interrupt"`. */
  queueFront: QueueFront;
  getChat: (id: string) => Promise<Chat | undefined>;
}

/** Longest message, title and content the API takes, in characters. */
export const maxMessageChars = 100_000;
export const maxTitleChars = 200;
/** A page of the chat list and of messages. */
export const maxChatsPage = 100;
export const maxMessagesPage = 1000;

export const ChatParams = Type.Object({ chat: Uuid() });
/** A message cursor: a bigserial id, never past what a JavaScript number holds exactly. */
export const Cursor = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 });

/** Loads the chat once per request and authorizes it: another user's chat is indistinguishable from none. */
export function loadChat(getChat: ChatRouteOptions['getChat']) {
  // Any route with a `chat` param: its schema (`ChatParams` or a wider one) has made it a canonical UUID.
  return async (req: FastifyRequest) => {
    const { params } = req;
    const id = typeof params === 'object' && params !== null && 'chat' in params && typeof params.chat === 'string' ? params.chat : undefined;
    const chat = id === undefined ? undefined : await getChat(id);
    if (!chat || chat.ownerId !== req.user.id) throw new ErrChatNotFound();
    req.chat = chat;
  };
}

const renderChat = (chat: Chat) => ({ status: 201, body: chatJson(chat) });
const renderSend = (r: SendResult) =>
  r.queued
    ? { status: 202, body: { queued: true, queued_message: queuedJson(r.queuedMessage), chat: chatJson(r.chat) } }
    : { status: 201, body: { queued: false, message: messageJson(r.message), chat: chatJson(r.chat) } };

const notArchived = (chat: Chat) => {
  if (chat.archived) throw new ErrChatArchived();
};

/** The chat API. Registered in the authenticated scope; errors of the service are mapped by the one error handler. */
export function chatRoutes(opts: ChatRouteOptions): FastifyPluginAsync {
  const { service } = opts;
  return async (plain) => {
    const app = plain.withTypeProvider<TypeBoxTypeProvider>();
    const withChat = { preHandler: loadChat(opts.getChat) };

    app.post(
      '/chats',
      {
        schema: {
          headers: IdempotencyHeaders,
          body: Type.Object(
            {
              message: Type.String({ minLength: 1, maxLength: maxMessageChars }),
              title: Type.Optional(Type.String({ maxLength: maxTitleChars })),
              model_config_id: Type.Optional(Uuid()),
            },
            { additionalProperties: false },
          ),
          response: { 201: ChatBody, ...errorResponses },
        },
      },
      async (req, reply) => {
        const { message, title, model_config_id: modelConfigId } = req.body;
        return sendOutcome(reply, await service.create(req.user, { message, title, modelConfigId }, idempotentRequest(req, renderChat)), renderChat);
      },
    );

    app.get(
      '/chats',
      {
        schema: {
          querystring: Type.Object(
            { limit: Type.Integer({ minimum: 1, maximum: maxChatsPage, default: 50 }), after_id: Type.Optional(Uuid()) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ chats: Type.Array(ChatBody) }), ...errorResponses },
        },
      },
      async (req) => {
        const chats = await service.list(req.user, req.query.after_id ?? null, req.query.limit);
        return { chats: chats.map(chatJson) };
      },
    );

    app.get(
      '/chats/:chat',
      { schema: { params: ChatParams, response: { 200: ChatBody, ...errorResponses } }, ...withChat },
      async (req) => chatJson(req.chat),
    );

    app.get(
      '/chats/:chat/messages',
      {
        schema: {
          params: ChatParams,
          querystring: Type.Object(
            { after_id: Cursor, limit: Type.Integer({ minimum: 1, maximum: maxMessagesPage, default: 100 }) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ messages: Type.Array(MessageBody) }), ...errorResponses },
        },
        ...withChat,
      },
      async (req) => ({ messages: (await service.messages(req.chat, req.query.after_id, req.query.limit)).map(messageJson) }),
    );

    // No loadChat here: the send statement authorizes as it locks the row, one round trip for the hottest route.
    app.post(
      '/chats/:chat/messages',
      {
        schema: {
          params: ChatParams,
          headers: IdempotencyHeaders,
          body: Type.Object(
            {
              content: Type.String({ minLength: 1, maxLength: maxMessageChars }),
              busy_behavior: Type.Optional(
                Type.Union([Type.Literal('queue'), Type.Literal('interrupt')], {
                  description:
                    'While a turn runs: `queue` (default) waits behind it and the queue; `interrupt` goes first in line, and the running turn stops keeping its partial answer, then this message runs.',
                }),
              ),
            },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({ queued: Type.Literal(false), message: MessageBody, chat: ChatBody }),
            202: Type.Object({ queued: Type.Literal(true), queued_message: QueuedBody, chat: ChatBody }),
            ...errorResponses,
          },
        },
      },
      async (req, reply) => {
        const { content, busy_behavior: busy } = req.body;
        if (busy === 'interrupt') {
          // Stopping a turn is not something a retry could replay.
          if (req.headers['idempotency-key']) throw new ErrInvalidRequest({ detail: 'busy_behavior "interrupt" cannot be sent with an Idempotency-Key' });
          const queued = await opts.queueFront.sendInterrupting(req.user, req.params.chat, content);
          if (queued) return reply.status(202).send({ queued: true as const, queued_message: queuedJson(queued.queuedMessage), chat: chatJson(queued.chat) });
        }
        return sendOutcome(reply, await service.send(req.user, req.params.chat, content, idempotentRequest(req, renderSend)), renderSend);
      },
    );

    app.post(
      '/chats/:chat/interrupt',
      { schema: { params: ChatParams, response: { 200: ChatBody, ...errorResponses } }, ...withChat },
      async (req) => {
        notArchived(req.chat);
        return chatJson(await service.interrupt(req.chat));
      },
    );

    app.delete(
      '/chats/:chat/queue/:id',
      {
        schema: {
          params: Type.Object({ chat: Uuid(), id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }),
          response: { 204: Type.Null(), ...errorResponses },
        },
        ...withChat,
      },
      async (req, reply) => {
        if (!(await service.deleteQueued(req.chat, req.params.id))) throw new ErrQueuedNotFound();
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/chats/:chat/queue/:id/promote',
      {
        schema: {
          params: Type.Object({ chat: Uuid(), id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }),
          response: { 200: ChatBody, ...errorResponses },
        },
        ...withChat,
      },
      async (req) => chatJson(await opts.queueFront.promote(req.user, req.chat, req.params.id)),
    );

    app.delete(
      '/chats/:chat',
      { schema: { params: ChatParams, response: { 204: Type.Null(), ...errorResponses } }, ...withChat },
      async (req, reply) => {
        await service.archive(req.chat);
        return reply.status(204).send(null);
      },
    );
  };
}
