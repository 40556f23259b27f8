/**
 * What a finished turn hands to whoever cares (the push after a turn, DESIGN §5): everything they need, so they make
 * no database reads of their own.
 */
export interface TurnResult {
  chatId: string;
  ownerId: string;
  /** The chat's title at the end of the turn. */
  title: string;
  /**
   * How the turn ended. `waiting`/`error` are real ends; `interrupted` (a user interrupt) and `abandoned` (shutdown,
   * lost the claim to another replica) get no push.
   */
  outcome: 'waiting' | 'error' | 'interrupted' | 'abandoned';
  /** The final assistant text of the turn, if any. */
  finalText?: string;
  /** The chat's last_error when outcome is `error`. */
  lastError?: string;
  /** The model and provider the turn resolved (through the config cache), e.g. for a summary call. */
  model: ResolvedModel;
}

export interface ResolvedModel {
  providerId: string;
  providerType: 'fake' | 'openai-compat';
  modelConfigId: string;
  model: string;
  baseUrl?: string;
  apiKey?: string;
}

/** Consumers of finished turns. Called off the turn path; must not throw into it. */
export interface TurnEndListener {
  turnEnded(result: TurnResult): void;
}
