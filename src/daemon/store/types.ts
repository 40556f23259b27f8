/** Rows as the store returns them: the domain's vocabulary in one place. */

export interface User {
  id: string;
  username: string;
  email: string | null;
  createdAt: Date;
}

export type ChatStatus = 'waiting' | 'pending' | 'running' | 'error';

export interface Chat {
  id: string;
  ownerId: string;
  title: string;
  status: ChatStatus;
  workerId: string | null;
  startedAt: Date | null;
  heartbeatAt: Date | null;
  lastModelConfigId: string | null;
  lastError: string | null;
  archived: boolean;
  createdAt: Date;
  updatedAt: Date;
  /** The run of the current or last turn: bumped by each claim and each retry, so parts name the run they belong to. */
  generation: number;
  /** Bumped by every change a stream shows: a replica compares it to tell which streams missed a notice. */
  version: number;
  lastErrorKind: ChatErrorKind | null;
  /** Set while a retryable provider failure waits for its next attempt. */
  retry: ChatRetry | null;
}

/** What went wrong with a turn, as the stream's `error` events name it. */
export type ChatErrorKind = 'auth' | 'rate_limit' | 'timeout' | 'overloaded' | 'config' | 'generic';

export interface ChatRetry {
  attempt: number;
  kind: ChatErrorKind;
  delayMs: number;
  retryingAt: Date;
}

export type ChatRole = 'user' | 'assistant';

export interface ChatMessage {
  id: number;
  chatId: string;
  role: ChatRole;
  content: string;
  createdAt: Date;
}

export interface QueuedChatMessage {
  id: number;
  chatId: string;
  content: string;
  createdAt: Date;
}

export type ChatProviderType = 'fake' | 'openai-compat';

export interface ChatProvider {
  id: string;
  name: string;
  type: ChatProviderType;
  baseUrl: string | null;
  enabled: boolean;
}

export interface ChatModelConfig {
  id: string;
  providerId: string;
  model: string;
  isDefault: boolean;
}
