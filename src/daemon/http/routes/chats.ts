import type { FastifyPluginAsync, FastifyRequest, preHandlerHookHandler } from 'fastify';

import { ModelResolutionError } from '../../chat/configCache.js';
import { chatJson, messageJson, queuedJson } from '../../chat/events.js';
import { ChatArchivedError, ChatGoneError, IdempotencyMismatchError, QueueFullError, type ChatService, type SendResult } from '../../chat/service.js';
import type { Chat } from '../../store/types.js';
import { requireAuth, type Authenticator } from '../auth.js';
import { HttpError, notFound } from '../errors.js';
import { idempotentRequest, sendOutcome } from '../idempotency.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `loadChat` on `/chats/:chat` routes: the caller's own chat. */
    chat: Chat;
  }
}

export interface ChatRouteOptions {
  authenticate: Authenticator;
  service: ChatService;
  getChat: (id: string) => Promise<Chat | undefined>;
}

export const chatParams = {
  type: 'object',
  properties: { chat: { type: 'string', format: 'uuid' } },
  required: ['chat'],
} as const;

/** Loads the chat once per request and authorizes it: another user's chat is indistinguishable from none. */
export function loadChat(getChat: ChatRouteOptions['getChat']): preHandlerHookHandler {
  return async (req: FastifyRequest) => {
    const { chat: id } = req.params as { chat: string };
    const chat = await getChat(id);
    if (!chat || chat.ownerId !== req.user.id) throw notFound('chat');
    req.chat = chat;
  };
}

function mapServiceError(err: unknown): never {
  if (err instanceof QueueFullError) throw new HttpError(409, 'the chat queue is full', err.message);
  if (err instanceof ModelResolutionError) throw new HttpError(400, 'invalid model_config_id', err.message);
  if (err instanceof ChatGoneError) throw notFound('chat');
  if (err instanceof ChatArchivedError) throw archived();
  if (err instanceof IdempotencyMismatchError) throw new HttpError(422, 'the Idempotency-Key was used for a different request', err.message);
  throw err;
}

const renderChat = (chat: Chat) => ({ status: 201, body: chatJson(chat) });
const renderSend = (r: SendResult) =>
  r.queued
    ? { status: 202, body: { queued: true, queued_message: queuedJson(r.queuedMessage), chat: chatJson(r.chat) } }
    : { status: 201, body: { queued: false, message: messageJson(r.message), chat: chatJson(r.chat) } };

const archived = () => new HttpError(409, 'the chat is archived');
const notArchived = (chat: Chat) => {
  if (chat.archived) throw archived();
};

export function chatRoutes(opts: ChatRouteOptions): FastifyPluginAsync {
  const { service } = opts;
  return async (app) => {
    app.addHook('onRequest', requireAuth(opts.authenticate));
    const withChat = { preHandler: loadChat(opts.getChat) };

    app.post(
      '/api/experimental/chats',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['message'],
            properties: {
              message: { type: 'string', minLength: 1, maxLength: 100_000 },
              title: { type: 'string', maxLength: 200 },
              model_config_id: { type: 'string', format: 'uuid' },
            },
          },
        },
      },
      async (req, reply) => {
        const body = req.body as { message: string; title?: string; model_config_id?: string };
        const outcome = await service
          .create(req.user, { message: body.message, title: body.title, modelConfigId: body.model_config_id }, idempotentRequest(req, renderChat))
          .catch(mapServiceError);
        return sendOutcome(reply, outcome, renderChat);
      },
    );

    app.get(
      '/api/experimental/chats',
      {
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 50 }, after_id: { type: 'string', format: 'uuid' } },
          },
        },
      },
      async (req) => {
        const q = req.query as { limit: number; after_id?: string };
        const chats = await service.list(req.user, q.after_id ?? null, q.limit);
        return { chats: chats.map(chatJson) };
      },
    );

    app.get('/api/experimental/chats/:chat', { schema: { params: chatParams }, ...withChat }, async (req) => chatJson(req.chat));

    app.get(
      '/api/experimental/chats/:chat/messages',
      {
        schema: {
          params: chatParams,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              after_id: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 },
              limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            },
          },
        },
        ...withChat,
      },
      async (req) => {
        const q = req.query as { after_id: number; limit: number };
        return { messages: (await service.messages(req.chat, q.after_id, q.limit)).map(messageJson) };
      },
    );

    // No loadChat here: the send statement authorizes as it locks the row, one round trip for the hottest route.
    app.post(
      '/api/experimental/chats/:chat/messages',
      {
        schema: {
          params: chatParams,
          body: { type: 'object', additionalProperties: false, required: ['content'], properties: { content: { type: 'string', minLength: 1, maxLength: 100_000 } } },
        },
      },
      async (req, reply) => {
        const { chat } = req.params as { chat: string };
        const outcome = await service.send(req.user, chat, (req.body as { content: string }).content, idempotentRequest(req, renderSend)).catch(mapServiceError);
        return sendOutcome(reply, outcome, renderSend);
      },
    );

    app.post('/api/experimental/chats/:chat/interrupt', { schema: { params: chatParams }, ...withChat }, async (req) => {
      notArchived(req.chat);
      return chatJson(await service.interrupt(req.chat).catch(mapServiceError));
    });

    app.delete(
      '/api/experimental/chats/:chat/queue/:id',
      {
        schema: {
          params: {
            type: 'object',
            required: ['chat', 'id'],
            properties: { ...chatParams.properties, id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } },
          },
        },
        ...withChat,
      },
      async (req, reply) => {
        if (!(await service.deleteQueued(req.chat, (req.params as { id: number }).id))) throw notFound('queued message');
        return reply.status(204).send();
      },
    );

    app.delete('/api/experimental/chats/:chat', { schema: { params: chatParams }, ...withChat }, async (req, reply) => {
      await service.archive(req.chat).catch(mapServiceError);
      return reply.status(204).send();
    });
  };
}
