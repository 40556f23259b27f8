import type { TurnEndListener, TurnResult } from '../chat/turnResult.js';
import type { Logger } from '../observability/logger.js';
import type { PushMessage } from './dispatcher.js';

export const defaultIcon = '/icon.png';
const doneBody = 'Agent has finished running.';
const errorBody = 'Agent encountered an error.';

/** The first sentence of the reply, at most 100 characters. */
export function summarize(text: string | undefined): string | undefined {
  const flat = text?.replace(/\s+/g, ' ').trim();
  if (!flat) return undefined;
  const sentence = /^.+?[.!?](?=\s|$)/.exec(flat)?.[0] ?? flat;
  return sentence.length > 100 ? `${sentence.slice(0, 99).trimEnd()}…` : sentence;
}

export function turnMessage(r: TurnResult): PushMessage {
  const body = r.outcome === 'error' ? (r.lastError?.trim() || errorBody) : (summarize(r.finalText) ?? doneBody);
  return { title: r.title, body: body.length > 300 ? `${body.slice(0, 299)}…` : body, icon: defaultIcon, data: { url: `/chats/${r.chatId}` } };
}

/**
 * Coder's push path re-reads what the turn already knew (chat, last assistant message, providers, model config).
 * Only the scaletest turns this on, to show the difference.
 */
export type UncachedTurnReads = (r: TurnResult) => Promise<TurnResult>;

/**
 * The push after a turn (DESIGN §5): everything comes from the turn result, so it makes no reads of its own. Pushes
 * run off the turn path, never fail it, and are awaited on shutdown.
 */
export class TurnPush implements TurnEndListener {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly dispatch: (userId: string, message: PushMessage) => Promise<unknown>,
    private readonly logger: Logger,
    private readonly uncachedReads?: UncachedTurnReads,
  ) {}

  turnEnded(result: TurnResult): void {
    if (result.outcome !== 'waiting' && result.outcome !== 'error') return;
    const p = (async () => {
      const r = this.uncachedReads ? await this.uncachedReads(result) : result;
      await this.dispatch(r.ownerId, turnMessage(r));
    })()
      .catch((err: unknown) => this.logger.warn({ err, chatId: result.chatId }, 'web push: push after turn failed'))
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Resolves when every push started so far has finished. */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
