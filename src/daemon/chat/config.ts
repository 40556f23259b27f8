import type { ChatProviderType } from '../store/types.js';

/** The chat part of the daemon's config; every field has a default fit for production. */
export interface ChatConfig {
  /** The default provider seeded at start. Default `fake`. */
  provider?: ChatProviderType;
  /** openai-compat: base URL up to `/v1`. */
  llmBaseUrl?: string;
  /** openai-compat: bearer key; kept in memory only. */
  llmApiKey?: string;
  llmModel?: string;
  /** fake: tokens per reply (default 8) and the delay before each (default 20 ms). */
  fakeTokens?: number;
  fakeTokenDelayMs?: number;
  /** Re-read provider and model config on every turn, as Coder does (scaletest comparison). */
  configCacheDisabled?: boolean;
  /** Default 30 s. */
  heartbeatIntervalMs?: number;
  /** A running chat whose heartbeat is older than this returns to pending. Default 5 min. */
  staleAfterMs?: number;
  /** Fallback poll for pending chats. Default 1 s. */
  pollIntervalMs?: number;
  /** Bound on control-path reads for callers without a deadline. Default 5 s. */
  controlReadTimeoutMs?: number;
  /** Turns one replica runs at once. Default 1000 (turns mostly wait on the model). */
  maxConcurrentTurns?: number;
  /** How long an openai-compat model may go silent (before its headers or between chunks). Default 120 s. */
  llmTimeoutMs?: number;
  /** Bytes a WebSocket client may leave unread before it is cut off. Default 4 MiB. */
  streamBacklogBytes?: number;
  /** Retries of a model call that failed retryably (rate limit, timeout, overload). Default 3. */
  llmRetries?: number;
  /** The first retry's delay, doubling up to `llmRetryMaxDelayMs` (an upstream's Retry-After wins). Default 1 s / 30 s. */
  llmRetryBaseDelayMs?: number;
  llmRetryMaxDelayMs?: number;
  /** The streams' safety net: how often each replica checks the versions of the chats it streams. Default 10 s. */
  streamCheckIntervalMs?: number;
}

export const chatDefaults = {
  provider: 'fake' as ChatProviderType,
  llmModel: 'fake-model',
  fakeTokens: 8,
  fakeTokenDelayMs: 20,
  heartbeatIntervalMs: 30_000,
  staleAfterMs: 5 * 60_000,
  pollIntervalMs: 1000,
  controlReadTimeoutMs: 5000,
  maxConcurrentTurns: 1000,
  llmTimeoutMs: 120_000,
  streamBacklogBytes: 4 * 1024 * 1024,
  llmRetries: 3,
  llmRetryBaseDelayMs: 1000,
  llmRetryMaxDelayMs: 30_000,
  streamCheckIntervalMs: 10_000,
};

export type ResolvedChatConfig = Omit<Required<ChatConfig>, 'llmBaseUrl' | 'llmApiKey'> & Pick<ChatConfig, 'llmBaseUrl' | 'llmApiKey'>;

export function resolveChatConfig(c: ChatConfig = {}): ResolvedChatConfig {
  const provider = c.provider ?? chatDefaults.provider;
  if (provider === 'openai-compat' && !c.llmBaseUrl) throw new Error('the openai-compat chat provider needs --llm-base-url');
  return {
    ...chatDefaults,
    configCacheDisabled: false,
    ...Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)),
    provider,
    llmModel: c.llmModel ?? (provider === 'fake' ? 'fake-model' : 'gpt-4o-mini'),
  } as ResolvedChatConfig;
}
