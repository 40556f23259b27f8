import type { ChatErrorKind } from '../../store/types.js';
import type { ResolvedModel } from '../turnResult.js';

export interface PromptMessage {
  role: 'user' | 'assistant';
  content: string;
}

export interface CompletionRequest {
  model: ResolvedModel;
  messages: PromptMessage[];
  signal: AbortSignal;
  /** Each streamed piece of the reply, in order. */
  onPart(text: string): void;
}

/** Kinds a retry can mend: the provider is busy or slow, not wrong. */
const retryableKinds: ReadonlySet<ChatErrorKind> = new Set(['rate_limit', 'timeout', 'overloaded']);

/** What users are told: upstream text never reaches them, only what our side knows to be true. */
const safeMessages: Record<ChatErrorKind, string> = {
  auth: 'The model provider rejected our credentials.',
  rate_limit: 'The model provider is rate limiting requests.',
  timeout: 'The model provider stopped answering.',
  overloaded: 'The model provider is unavailable or overloaded.',
  config: 'The model configuration is not usable.',
  generic: 'The model call failed.',
};

/**
 * A model's reply failed. `message` is the safe text shown to the chat's owner (stream, last_error, push); `detail`
 * is what the upstream said, for the logs only, and is redacted before it is logged.
 */
export class ProviderError extends Error {
  readonly kind: ChatErrorKind;
  readonly detail: string;
  /** How long the upstream asked us to wait (Retry-After), when it said. */
  readonly retryAfterMs: number | undefined;

  constructor(kind: ChatErrorKind, detail: string, opts: { cause?: unknown; retryAfterMs?: number; status?: number } = {}) {
    super(opts.status === undefined ? safeMessages[kind] : `${safeMessages[kind]} (HTTP ${opts.status})`, { cause: opts.cause });
    this.kind = kind;
    this.detail = detail;
    this.retryAfterMs = opts.retryAfterMs;
  }

  get retryable(): boolean {
    return retryableKinds.has(this.kind);
  }
}

/** The kind of an upstream's HTTP status. */
export function kindOfStatus(status: number): ChatErrorKind {
  if (status === 401 || status === 403) return 'auth';
  if (status === 429) return 'rate_limit';
  if (status === 408 || status === 504) return 'timeout';
  if (status === 502 || status === 503 || status === 529 || status >= 500) return 'overloaded';
  if (status === 400 || status === 404 || status === 422) return 'config';
  return 'generic';
}

/** Streams one model reply and resolves with its full text. */
export interface ModelProvider {
  complete(req: CompletionRequest): Promise<string>;
}
