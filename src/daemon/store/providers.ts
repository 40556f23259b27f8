import { namedQuery, type Queryable } from '../postgres/pool.js';
import type { ChatModelConfig, ChatProvider, ChatProviderType } from './types.js';

interface ProviderRow {
  id: string;
  name: string;
  type: ChatProviderType;
  base_url: string | null;
  enabled: boolean;
  api_key_encrypted: Buffer | null;
}

interface ModelConfigRow {
  id: string;
  provider_id: string;
  model: string;
  is_default: boolean;
  enabled: boolean;
  display_name: string | null;
}

const providerColumns = 'id, name, type, base_url, enabled, api_key_encrypted';
const modelColumns = 'id, provider_id, model, is_default, enabled, display_name';

const toProvider = (r: ProviderRow): ChatProvider => ({ id: r.id, name: r.name, type: r.type, baseUrl: r.base_url, enabled: r.enabled, apiKeyEncrypted: r.api_key_encrypted });
const toModelConfig = (r: ModelConfigRow): ChatModelConfig => ({
  id: r.id,
  providerId: r.provider_id,
  model: r.model,
  isDefault: r.is_default,
  enabled: r.enabled,
  displayName: r.display_name,
});

const getEnabledChatProvidersQ = namedQuery('getEnabledChatProviders', `SELECT ${providerColumns} FROM chat_providers WHERE enabled ORDER BY name`);

export async function getEnabledChatProviders(db: Queryable): Promise<ChatProvider[]> {
  const { rows } = await db.query<ProviderRow>(getEnabledChatProvidersQ);
  return rows.map(toProvider);
}

const listChatProvidersQ = namedQuery('listChatProviders', `SELECT ${providerColumns} FROM chat_providers ORDER BY name`);

export async function listChatProviders(db: Queryable): Promise<ChatProvider[]> {
  const { rows } = await db.query<ProviderRow>(listChatProvidersQ);
  return rows.map(toProvider);
}

const getChatProviderQ = namedQuery('getChatProvider', `SELECT ${providerColumns} FROM chat_providers WHERE id::text = $1 OR name = $1`);

/** By id or name. */
export async function getChatProvider(db: Queryable, ref: string): Promise<ChatProvider | undefined> {
  const { rows } = await db.query<ProviderRow>(getChatProviderQ, [ref]);
  return rows[0] && toProvider(rows[0]);
}

const insertChatProviderQ = namedQuery(
  'insertChatProvider',
  `INSERT INTO chat_providers (name, type, base_url, api_key_encrypted) VALUES ($1, $2, $3, $4) RETURNING ${providerColumns}`,
);

export async function insertChatProvider(db: Queryable, p: { name: string; type: ChatProviderType; baseUrl: string | null; apiKeyEncrypted: Buffer | null }): Promise<ChatProvider> {
  const { rows } = await db.query<ProviderRow>(insertChatProviderQ, [p.name, p.type, p.baseUrl, p.apiKeyEncrypted]);
  return toProvider(rows[0]!);
}

// NULL leaves a field as it is; `$5` clears the key (an explicit "no key" is not NULL-able otherwise).
const updateChatProviderQ = namedQuery(
  'updateChatProvider',
  `UPDATE chat_providers
      SET base_url = coalesce($2, base_url), enabled = coalesce($3, enabled),
          api_key_encrypted = CASE WHEN $5 THEN NULL ELSE coalesce($4, api_key_encrypted) END, updated_at = now()
    WHERE id = $1 RETURNING ${providerColumns}`,
);

export async function updateChatProvider(
  db: Queryable,
  id: string,
  p: { baseUrl?: string; enabled?: boolean; apiKeyEncrypted?: Buffer; clearApiKey?: boolean },
): Promise<ChatProvider | undefined> {
  const { rows } = await db.query<ProviderRow>(updateChatProviderQ, [id, p.baseUrl ?? null, p.enabled ?? null, p.apiKeyEncrypted ?? null, p.clearApiKey ?? false]);
  return rows[0] && toProvider(rows[0]);
}

const getChatModelConfigByIDQ = namedQuery('getChatModelConfigByID', `SELECT ${modelColumns} FROM chat_model_configs WHERE id = $1`);

export async function getChatModelConfigByID(db: Queryable, id: string): Promise<ChatModelConfig | undefined> {
  const { rows } = await db.query<ModelConfigRow>(getChatModelConfigByIDQ, [id]);
  return rows[0] && toModelConfig(rows[0]);
}

const getDefaultChatModelConfigQ = namedQuery('getDefaultChatModelConfig', `SELECT ${modelColumns} FROM chat_model_configs WHERE is_default`);

export async function getDefaultChatModelConfig(db: Queryable): Promise<ChatModelConfig | undefined> {
  const { rows } = await db.query<ModelConfigRow>(getDefaultChatModelConfigQ);
  return rows[0] && toModelConfig(rows[0]);
}

const listChatModelConfigsQ = namedQuery('listChatModelConfigs', `SELECT ${modelColumns} FROM chat_model_configs ORDER BY created_at, id`);

export async function listChatModelConfigs(db: Queryable): Promise<ChatModelConfig[]> {
  const { rows } = await db.query<ModelConfigRow>(listChatModelConfigsQ);
  return rows.map(toModelConfig);
}

const insertChatModelConfigQ = namedQuery(
  'insertChatModelConfig',
  `INSERT INTO chat_model_configs (provider_id, model, display_name) VALUES ($1, $2, $3) RETURNING ${modelColumns}`,
);

export async function insertChatModelConfig(db: Queryable, providerId: string, model: string, displayName: string | null): Promise<ChatModelConfig> {
  const { rows } = await db.query<ModelConfigRow>(insertChatModelConfigQ, [providerId, model, displayName]);
  return toModelConfig(rows[0]!);
}

const updateChatModelConfigQ = namedQuery(
  'updateChatModelConfig',
  `UPDATE chat_model_configs SET display_name = coalesce($2, display_name), enabled = coalesce($3, enabled), updated_at = now()
    WHERE id = $1 RETURNING ${modelColumns}`,
);

export async function updateChatModelConfig(db: Queryable, id: string, p: { displayName?: string; enabled?: boolean }): Promise<ChatModelConfig | undefined> {
  const { rows } = await db.query<ModelConfigRow>(updateChatModelConfigQ, [id, p.displayName ?? null, p.enabled ?? null]);
  return rows[0] && toModelConfig(rows[0]);
}

const clearDefaultExceptQ = namedQuery('clearDefaultChatModelConfigExcept', 'UPDATE chat_model_configs SET is_default = false WHERE is_default AND id <> $1');
const setDefaultQ = namedQuery('setDefaultChatModelConfig', `UPDATE chat_model_configs SET is_default = true, updated_at = now() WHERE id = $1 RETURNING ${modelColumns}`);

/** Makes one model config the default. Call inside a transaction (the partial unique index allows one default). */
export async function setDefaultChatModelConfig(tx: Queryable, id: string): Promise<ChatModelConfig | undefined> {
  await tx.query(clearDefaultExceptQ, [id]);
  const { rows } = await tx.query<ModelConfigRow>(setDefaultQ, [id]);
  return rows[0] && toModelConfig(rows[0]);
}

const upsertChatProviderQ = namedQuery(
  'upsertChatProvider',
  `INSERT INTO chat_providers (name, type, base_url) VALUES ($1, $2, $3)
   ON CONFLICT (name) DO UPDATE SET type = EXCLUDED.type, base_url = EXCLUDED.base_url, enabled = true, updated_at = now()
   RETURNING ${providerColumns}`,
);

export async function upsertChatProvider(tx: Queryable, name: string, type: ChatProviderType, baseUrl: string | null): Promise<ChatProvider> {
  const { rows } = await tx.query<ProviderRow>(upsertChatProviderQ, [name, type, baseUrl]);
  return toProvider(rows[0]!);
}

const upsertChatModelConfigQ = namedQuery(
  'upsertChatModelConfig',
  `INSERT INTO chat_model_configs (provider_id, model) VALUES ($1, $2)
   ON CONFLICT (provider_id, model) DO UPDATE SET enabled = true
   RETURNING ${modelColumns}`,
);

export async function upsertChatModelConfig(tx: Queryable, providerId: string, model: string): Promise<ChatModelConfig> {
  const { rows } = await tx.query<ModelConfigRow>(upsertChatModelConfigQ, [providerId, model]);
  return toModelConfig(rows[0]!);
}

const lockChatConfigSeedQ = namedQuery('lockChatConfigSeed', `SELECT pg_advisory_xact_lock(hashtext('coder-lite:chat-config-seed'))`);

/** Serialises the start-up seeding of replicas that start together. Call inside the seeding transaction. */
export async function lockChatConfigSeed(tx: Queryable): Promise<void> {
  await tx.query(lockChatConfigSeedQ);
}

const defaultChosenKey = 'chat_default_model_chosen';
const markDefaultChosenQ = namedQuery(
  'markChatDefaultModelChosen',
  `INSERT INTO site_configs (key, value) VALUES ('${defaultChosenKey}', 'true') ON CONFLICT (key) DO UPDATE SET updated_at = now()`,
);
const getDefaultChosenQ = namedQuery('getChatDefaultModelChosen', `SELECT 1 FROM site_configs WHERE key = '${defaultChosenKey}'`);

/** An operator picked the default (API or CLI): start-up flags no longer move it. */
export async function markDefaultModelChosen(tx: Queryable): Promise<void> {
  await tx.query(markDefaultChosenQ);
}

export async function defaultModelChosen(db: Queryable): Promise<boolean> {
  return ((await db.query(getDefaultChosenQ)).rowCount ?? 0) > 0;
}
