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

/** A model's reply failed; the message is shown to the chat's owner as last_error. */
export class ProviderError extends Error {}

/** Streams one model reply and resolves with its full text. */
export interface ModelProvider {
  complete(req: CompletionRequest): Promise<string>;
}
