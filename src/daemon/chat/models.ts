import type { Database } from '../postgres/pool.js';
import type { Publisher } from '../pubsub/pubsub.js';
import {
  getChatModelConfigByID,
  getChatProvider,
  insertChatModelConfig,
  insertChatProvider,
  listChatModelConfigs,
  listChatProviders,
  markDefaultModelChosen,
  setDefaultChatModelConfig,
  updateChatModelConfig,
  updateChatProvider,
} from '../store/providers.js';
import type { ChatModelConfig, ChatProvider, ChatProviderType } from '../store/types.js';
import { configChangeChannel } from './configCache.js';
import type { SecretBox } from './secretBox.js';

export class ModelInputError extends Error {}
export class ModelNotFoundError extends Error {}
export class ModelConflictError extends Error {}

const namePattern = /^[a-zA-Z0-9](?:[a-zA-Z0-9-_.]{0,62}[a-zA-Z0-9])?$/;

export interface ModelAdminOptions {
  db: Database;
  publisher: Publisher;
  /** Seals provider API keys; without it a key cannot be stored. */
  secrets?: SecretBox;
  /** This replica's config cache, dropped before the answer (the others hear `chat:config_change`). */
  invalidate?: () => void;
}

const uniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

function checkBaseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ModelInputError(`invalid base URL "${value}": expected an absolute http(s) URL up to /v1`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ModelInputError(`invalid base URL "${value}": the scheme must be http or https`);
  if (url.username || url.password) throw new ModelInputError('invalid base URL: credentials go in the API key, not the URL');
  return value;
}

/**
 * Providers and model configs, as operators change them. Every change reaches every replica's config cache at once
 * through `chat:config_change`. Provider API keys are sealed (AES-256-GCM) before they reach the database and are
 * never returned: listings say only whether a key is set.
 */
export class ModelAdmin {
  constructor(private readonly opts: ModelAdminOptions) {}

  listProviders(): Promise<ChatProvider[]> {
    return listChatProviders(this.opts.db);
  }

  listModels(): Promise<ChatModelConfig[]> {
    return listChatModelConfigs(this.opts.db);
  }

  async provider(ref: string): Promise<ChatProvider> {
    const p = await getChatProvider(this.opts.db, ref);
    if (!p) throw new ModelNotFoundError(`no provider "${ref}"`);
    return p;
  }

  async createProvider(input: { name: string; type: ChatProviderType; baseUrl?: string; apiKey?: string }): Promise<ChatProvider> {
    if (!namePattern.test(input.name)) throw new ModelInputError(`invalid provider name "${input.name}": use 1-64 letters, digits, '-', '_' or '.'`);
    if (input.type === 'openai-compat' && !input.baseUrl) throw new ModelInputError('an openai-compat provider needs a base URL');
    const baseUrl = input.baseUrl === undefined ? null : checkBaseUrl(input.baseUrl);
    try {
      const p = await insertChatProvider(this.opts.db, { name: input.name, type: input.type, baseUrl, apiKeyEncrypted: input.apiKey === undefined ? null : this.seal(input.apiKey) });
      await this.changed();
      return p;
    } catch (err) {
      if (uniqueViolation(err)) throw new ModelConflictError(`a provider named "${input.name}" already exists`);
      throw err;
    }
  }

  async updateProvider(ref: string, input: { baseUrl?: string; apiKey?: string; clearApiKey?: boolean; enabled?: boolean }): Promise<ChatProvider> {
    const p = await this.provider(ref);
    const after = await updateChatProvider(this.opts.db, p.id, {
      baseUrl: input.baseUrl === undefined ? undefined : checkBaseUrl(input.baseUrl),
      enabled: input.enabled,
      apiKeyEncrypted: input.apiKey === undefined ? undefined : this.seal(input.apiKey),
      clearApiKey: input.clearApiKey,
    });
    if (!after) throw new ModelNotFoundError(`no provider "${ref}"`);
    await this.changed();
    return after;
  }

  async createModel(input: { provider: string; model: string; displayName?: string; makeDefault?: boolean }): Promise<ChatModelConfig> {
    if (input.model.trim() === '' || input.model.length > 200) throw new ModelInputError('a model name is 1 to 200 characters');
    const p = await this.provider(input.provider);
    try {
      const created = await this.opts.db.tx(async (tx) => {
        const m = await insertChatModelConfig(tx, p.id, input.model, input.displayName ?? null);
        if (!input.makeDefault) return m;
        if (!p.enabled) throw new ModelConflictError(`provider ${p.name} is disabled: enable it before making one of its models the default`);
        await markDefaultModelChosen(tx);
        return (await setDefaultChatModelConfig(tx, m.id))!;
      });
      await this.changed();
      return created;
    } catch (err) {
      if (uniqueViolation(err)) throw new ModelConflictError(`provider ${p.name} already has a model config for "${input.model}"`);
      throw err;
    }
  }

  async model(id: string): Promise<ChatModelConfig> {
    const m = await getChatModelConfigByID(this.opts.db, id);
    if (!m) throw new ModelNotFoundError(`no model config ${id}`);
    return m;
  }

  async updateModel(id: string, input: { displayName?: string; enabled?: boolean }): Promise<ChatModelConfig> {
    const m = await this.model(id);
    // A chat created without a model_config_id would have nothing to run.
    if (input.enabled === false && m.isDefault) throw new ModelConflictError('the default model config cannot be disabled: make another one the default first');
    const after = await updateChatModelConfig(this.opts.db, id, input);
    if (!after) throw new ModelNotFoundError(`no model config ${id}`);
    await this.changed();
    return after;
  }

  async setDefault(id: string): Promise<ChatModelConfig> {
    const m = await this.model(id);
    if (!m.enabled) throw new ModelConflictError(`model config ${m.model} is disabled: enable it first`);
    const after = await this.opts.db.tx(async (tx) => {
      await markDefaultModelChosen(tx);
      return setDefaultChatModelConfig(tx, id);
    });
    if (!after) throw new ModelNotFoundError(`no model config ${id}`);
    await this.changed();
    return after;
  }

  private seal(apiKey: string): Buffer {
    if (apiKey === '') throw new ModelInputError('an empty API key: use clear instead');
    if (!this.opts.secrets) throw new ModelInputError('this daemon has no encryption key (CODER_LITE_ENCRYPTION_KEY), so it cannot store a provider API key');
    return this.opts.secrets.seal(apiKey);
  }

  private async changed(): Promise<void> {
    this.opts.invalidate?.();
    await this.opts.publisher.publish(configChangeChannel, '');
  }
}

/** As the API and the CLI's --json show them: a provider's key is never shown, only whether one is stored. */
export const providerJson = (p: ChatProvider) => ({ id: p.id, name: p.name, type: p.type, base_url: p.baseUrl, enabled: p.enabled, has_api_key: p.apiKeyEncrypted !== null });
export const modelJson = (m: ChatModelConfig) => ({ id: m.id, provider_id: m.providerId, model: m.model, display_name: m.displayName, is_default: m.isDefault, enabled: m.enabled });
