import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';

import { modelJson, providerJson, type ModelAdmin } from '../../chat/models.js';
import { errorResponses } from '../schemas.js';
import { Uuid } from '../validation.js';
import { requireAdmin } from './users.js';

export interface ModelRouteOptions {
  models: ModelAdmin;
}

const ProviderType = Type.Union([Type.Literal('fake'), Type.Literal('openai-compat')]);
const ProviderBody = Type.Object({
  id: Uuid(),
  name: Type.String(),
  type: ProviderType,
  base_url: Type.Union([Type.String(), Type.Null()]),
  enabled: Type.Boolean(),
  has_api_key: Type.Boolean({ description: 'Whether a key is stored (encrypted); the key itself is never returned.' }),
});
const ModelBody = Type.Object({
  id: Uuid(),
  provider_id: Uuid(),
  model: Type.String(),
  display_name: Type.Union([Type.String(), Type.Null()]),
  is_default: Type.Boolean(),
  enabled: Type.Boolean(),
});

const ModelParams = Type.Object({ model: Uuid() });
const ProviderParams = Type.Object({ provider: Type.String({ minLength: 1, maxLength: 64, description: 'A provider id or name' }) });
const BaseUrl = Type.String({ minLength: 1, maxLength: 2048 });
const ApiKey = Type.String({ minLength: 1, maxLength: 4096, description: 'Stored encrypted; never returned.' });

/** Model configs (any user lists the enabled ones, to pick a `model_config_id`) and providers (admin). */
export function modelRoutes(opts: ModelRouteOptions): FastifyPluginAsync {
  const { models } = opts;
  return async (plain) => {
    const app = plain.withTypeProvider<TypeBoxTypeProvider>();
    const adminOnly = { preHandler: requireAdmin };

    app.get('/api/v2/chats/models', { schema: { response: { 200: Type.Object({ models: Type.Array(ModelBody) }), ...errorResponses } } }, async (req) => {
      const all = await models.listModels();
      return { models: (req.user.isAdmin ? all : all.filter((m) => m.enabled)).map(modelJson) };
    });

    app.post(
      '/api/v2/chats/models',
      {
        schema: {
          body: Type.Object(
            {
              provider: Type.String({ minLength: 1, maxLength: 64, description: 'A provider id or name' }),
              model: Type.String({ minLength: 1, maxLength: 200 }),
              display_name: Type.Optional(Type.String({ maxLength: 200 })),
              is_default: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false },
          ),
          response: { 201: ModelBody, ...errorResponses },
        },
        ...adminOnly,
      },
      async (req, reply) => {
        const { provider, model, display_name: displayName, is_default: makeDefault } = req.body;
        return reply.status(201).send(modelJson(await models.createModel({ provider, model, displayName, makeDefault })));
      },
    );

    app.patch(
      '/api/v2/chats/models/:model',
      {
        schema: {
          params: ModelParams,
          body: Type.Object({ display_name: Type.Optional(Type.String({ maxLength: 200 })), enabled: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
          response: { 200: ModelBody, ...errorResponses },
        },
        ...adminOnly,
      },
      async (req) => modelJson(await models.updateModel(req.params.model, { displayName: req.body.display_name, enabled: req.body.enabled })),
    );

    app.put('/api/v2/chats/models/:model/default', { schema: { params: ModelParams, response: { 200: ModelBody, ...errorResponses } }, ...adminOnly }, async (req) =>
      modelJson(await models.setDefault(req.params.model)),
    );

    app.get('/api/v2/chats/providers', { schema: { response: { 200: Type.Object({ providers: Type.Array(ProviderBody) }), ...errorResponses } }, ...adminOnly }, async () => ({
      providers: (await models.listProviders()).map(providerJson),
    }));

    app.post(
      '/api/v2/chats/providers',
      {
        schema: {
          body: Type.Object(
            { name: Type.String({ minLength: 1, maxLength: 64 }), type: ProviderType, base_url: Type.Optional(BaseUrl), api_key: Type.Optional(ApiKey) },
            { additionalProperties: false },
          ),
          response: { 201: ProviderBody, ...errorResponses },
        },
        ...adminOnly,
      },
      async (req, reply) => {
        const { name, type, base_url: baseUrl, api_key: apiKey } = req.body;
        return reply.status(201).send(providerJson(await models.createProvider({ name, type, baseUrl, apiKey })));
      },
    );

    app.patch(
      '/api/v2/chats/providers/:provider',
      {
        schema: {
          params: ProviderParams,
          body: Type.Object(
            { base_url: Type.Optional(BaseUrl), api_key: Type.Optional(Type.Union([ApiKey, Type.Null()], { description: 'null removes the stored key' })), enabled: Type.Optional(Type.Boolean()) },
            { additionalProperties: false },
          ),
          response: { 200: ProviderBody, ...errorResponses },
        },
        ...adminOnly,
      },
      async (req) => {
        const { base_url: baseUrl, api_key: apiKey, enabled } = req.body;
        return providerJson(await models.updateProvider(req.params.provider, { baseUrl, apiKey: apiKey ?? undefined, clearApiKey: apiKey === null, enabled }));
      },
    );
  };
}
