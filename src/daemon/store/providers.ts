import { namedQuery, type Queryable } from '../postgres/pool.js';
import type { ChatModelConfig, ChatProvider, ChatProviderType } from './types.js';

interface ProviderRow {
  id: string;
  name: string;
  type: ChatProviderType;
  base_url: string | null;
  enabled: boolean;
}

interface ModelConfigRow {
  id: string;
  provider_id: string;
  model: string;
  is_default: boolean;
}

const toProvider = (r: ProviderRow): ChatProvider => ({ id: r.id, name: r.name, type: r.type, baseUrl: r.base_url, enabled: r.enabled });
const toModelConfig = (r: ModelConfigRow): ChatModelConfig => ({ id: r.id, providerId: r.provider_id, model: r.model, isDefault: r.is_default });

const getEnabledChatProvidersQ = namedQuery(
  'getEnabledChatProviders',
  'SELECT id, name, type, base_url, enabled FROM chat_providers WHERE enabled ORDER BY name',
);

export async function getEnabledChatProviders(db: Queryable): Promise<ChatProvider[]> {
  const { rows } = await db.query<ProviderRow>(getEnabledChatProvidersQ);
  return rows.map(toProvider);
}

const getChatModelConfigByIDQ = namedQuery('getChatModelConfigByID', 'SELECT id, provider_id, model, is_default FROM chat_model_configs WHERE id = $1');

export async function getChatModelConfigByID(db: Queryable, id: string): Promise<ChatModelConfig | undefined> {
  const { rows } = await db.query<ModelConfigRow>(getChatModelConfigByIDQ, [id]);
  return rows[0] && toModelConfig(rows[0]);
}

const getDefaultChatModelConfigQ = namedQuery('getDefaultChatModelConfig', 'SELECT id, provider_id, model, is_default FROM chat_model_configs WHERE is_default');

export async function getDefaultChatModelConfig(db: Queryable): Promise<ChatModelConfig | undefined> {
  const { rows } = await db.query<ModelConfigRow>(getDefaultChatModelConfigQ);
  return rows[0] && toModelConfig(rows[0]);
}

const upsertChatProviderQ = namedQuery(
  'upsertChatProvider',
  `INSERT INTO chat_providers (name, type, base_url) VALUES ($1, $2, $3)
   ON CONFLICT (name) DO UPDATE SET type = EXCLUDED.type, base_url = EXCLUDED.base_url, enabled = true, updated_at = now()
   RETURNING id, name, type, base_url, enabled`,
);

export async function upsertChatProvider(tx: Queryable, name: string, type: ChatProviderType, baseUrl: string | null): Promise<ChatProvider> {
  const { rows } = await tx.query<ProviderRow>(upsertChatProviderQ, [name, type, baseUrl]);
  return toProvider(rows[0]!);
}

const clearDefaultChatModelConfigQ = namedQuery(
  'clearDefaultChatModelConfig',
  'UPDATE chat_model_configs SET is_default = false WHERE is_default AND NOT (provider_id = $1 AND model = $2)',
);

const upsertDefaultChatModelConfigQ = namedQuery(
  'upsertDefaultChatModelConfig',
  `INSERT INTO chat_model_configs (provider_id, model, is_default) VALUES ($1, $2, true)
   ON CONFLICT (provider_id, model) DO UPDATE SET is_default = true
   RETURNING id, provider_id, model, is_default`,
);

/** Makes (provider, model) the one default model config. Call inside a transaction. */
export async function upsertDefaultChatModelConfig(tx: Queryable, providerId: string, model: string): Promise<ChatModelConfig> {
  await tx.query(clearDefaultChatModelConfigQ, [providerId, model]);
  const { rows } = await tx.query<ModelConfigRow>(upsertDefaultChatModelConfigQ, [providerId, model]);
  return toModelConfig(rows[0]!);
}

const lockChatConfigSeedQ = namedQuery('lockChatConfigSeed', `SELECT pg_advisory_xact_lock(hashtext('coder-lite:chat-config-seed'))`);

/** Serialises the start-up seeding of replicas that start together. Call inside the seeding transaction. */
export async function lockChatConfigSeed(tx: Queryable): Promise<void> {
  await tx.query(lockChatConfigSeedQ);
}
