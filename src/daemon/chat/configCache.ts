import type { Database } from '../postgres/pool.js';
import type { Subscriber, Cancel } from '../pubsub/pubsub.js';
import { getChatModelConfigByID, getDefaultChatModelConfig, getEnabledChatProviders } from '../store/providers.js';
import type { ChatModelConfig, ChatProvider } from '../store/types.js';
import type { ResolvedModel } from './turnResult.js';

/** Published (empty payload) by whatever changes providers or model configs, on any replica. */
export const configChangeChannel = 'chat:config_change';

export class ModelResolutionError extends Error {}

export interface ConfigCacheOptions {
  db: Database;
  /** API keys by provider name from the daemon's flags (the seeded provider): kept in memory only. */
  apiKeys: ReadonlyMap<string, string>;
  /** Opens a provider's stored key (encrypted at rest); absent when the daemon has no encryption key. */
  openSecret?: (sealed: Buffer) => string;
  ttlMs?: number;
  /** Every resolve reads the database, as Coder does (scaletest comparison). */
  disabled?: boolean;
  now?: () => number;
}

interface Entry<T> {
  value: Promise<T>;
  expires: number;
  generation: number;
}

/**
 * Provider and model-config resolution for turns. Both reads are cached for 10 s and dropped on `chat:config_change`,
 * so a turn does not re-read unchanged config; a generation guard keeps a read that raced an invalidation from being
 * stored.
 */
export class ConfigCache {
  private readonly ttlMs: number;
  private readonly now: () => number;
  private generation = 0;
  private providers?: Entry<ChatProvider[]>;
  private readonly models = new Map<string, Entry<ChatModelConfig | undefined>>();
  private cancelSub?: Cancel;

  constructor(private readonly opts: ConfigCacheOptions) {
    this.ttlMs = opts.ttlMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Listens for config changes from every replica. */
  async start(subscriber: Subscriber): Promise<void> {
    this.cancelSub = await subscriber.subscribeWithErr(configChangeChannel, () => this.invalidate());
  }

  async close(): Promise<void> {
    await this.cancelSub?.();
  }

  invalidate(): void {
    this.generation++;
    this.providers = undefined;
    this.models.clear();
  }

  /** The model config `id` (or the default when null) with its enabled provider. */
  async resolve(modelConfigId: string | null): Promise<ResolvedModel> {
    const key = modelConfigId ?? '';
    const config = await this.cached(this.models.get(key), (e) => this.models.set(key, e), () =>
      modelConfigId ? getChatModelConfigByID(this.opts.db, modelConfigId) : getDefaultChatModelConfig(this.opts.db),
    );
    if (!config) throw new ModelResolutionError(modelConfigId ? `model config ${modelConfigId} does not exist` : 'no default model config is set');
    if (!config.enabled) throw new ModelResolutionError(`model config ${config.model} is disabled`);
    const providers = await this.cached(this.providers, (e) => (this.providers = e), () => getEnabledChatProviders(this.opts.db));
    const provider = providers.find((p) => p.id === config.providerId);
    if (!provider) throw new ModelResolutionError(`the provider of model ${config.model} is disabled or gone`);
    return {
      providerId: provider.id,
      providerType: provider.type,
      modelConfigId: config.id,
      model: config.model,
      ...(provider.baseUrl ? { baseUrl: provider.baseUrl } : {}),
      ...this.apiKey(provider),
    };
  }

  /** A stored key wins over the flags' one; a stored key this daemon cannot open fails the turn, not silently unauthenticated. */
  private apiKey(provider: ChatProvider): { apiKey?: string } {
    if (provider.apiKeyEncrypted) {
      if (!this.opts.openSecret) throw new ModelResolutionError(`the API key of provider ${provider.name} is encrypted, and this daemon has no --encryption-key`);
      try {
        return { apiKey: this.opts.openSecret(provider.apiKeyEncrypted) };
      } catch (err) {
        throw new ModelResolutionError(`the API key of provider ${provider.name} cannot be opened: ${(err as Error).message}`);
      }
    }
    const flagKey = this.opts.apiKeys.get(provider.name);
    return flagKey === undefined ? {} : { apiKey: flagKey };
  }

  private cached<T>(entry: Entry<T> | undefined, store: (e: Entry<T>) => void, read: () => Promise<T>): Promise<T> {
    if (this.opts.disabled) return read();
    const now = this.now();
    if (entry && entry.generation === this.generation && entry.expires > now) return entry.value;
    const generation = this.generation;
    const value = read();
    const fresh: Entry<T> = { value, expires: now + this.ttlMs, generation };
    store(fresh);
    // A failed read is not remembered; the next turn tries again.
    value.catch(() => {
      if (generation === this.generation) this.invalidate();
    });
    return value;
  }
}
