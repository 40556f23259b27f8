import type { TurnEndListener, TurnResult } from '../chat/turnResult.js';
import type { Logger } from '../observability/logger.js';
import type { PushMessage } from './dispatcher.js';
import type { WebpushMetrics } from './metrics.js';

export const iconPath = '/icon.png';
const doneBody = 'Agent has finished running.';
const errorBody = 'Agent encountered an error.';

/** The first sentence of the reply, at most 100 characters. */
export function summarize(text: string | undefined): string | undefined {
  const flat = text?.replace(/\s+/g, ' ').trim();
  if (!flat) return undefined;
  const sentence = /^.+?[.!?](?=\s|$)/.exec(flat)?.[0] ?? flat;
  return sentence.length > 100 ? `${sentence.slice(0, 99).trimEnd()}…` : sentence;
}

/**
 * One chat, one notification: the tag (on screen, across devices) and the Topic (at the push service, for a user
 * away for a day) are the chat's, so a newer turn's replaces the older. A chat UUID without dashes is exactly the
 * 32 base64url characters a Topic may hold. An error is worth waking a device for; a finished turn is not.
 */
export function turnMessage(r: TurnResult, baseUrl: string): PushMessage {
  const body = r.outcome === 'error' ? (r.lastError?.trim() || errorBody) : (summarize(r.finalText) ?? doneBody);
  return {
    title: r.title,
    body: body.length > 300 ? `${body.slice(0, 299)}…` : body,
    navigate: new URL(`/chats/${r.chatId}`, baseUrl).href,
    icon: new URL(iconPath, baseUrl).href,
    tag: r.chatId,
    topic: r.chatId.replaceAll('-', ''),
    urgency: r.outcome === 'error' ? 'high' : 'normal',
  };
}

/**
 * Coder's push path re-reads what the turn already knew (chat, last assistant message, providers, model config).
 * Only the scaletest turns this on, to show the difference.
 */
export type UncachedTurnReads = (r: TurnResult) => Promise<TurnResult>;

export interface TurnPushOptions {
  dispatch: (userId: string, message: PushMessage) => Promise<unknown>;
  logger: Logger;
  metrics: Pick<WebpushMetrics, 'suppressed'>;
  /** The URL users reach the console at: notifications link there. */
  baseUrl: () => string;
  /** True while the owner has the chat visible and focused (on any replica). */
  watching?: (chatId: string, userId: string) => boolean;
  uncachedReads?: UncachedTurnReads;
}

/**
 * The push after a turn (DESIGN §5): everything comes from the turn result, so it makes no reads of its own. Pushes
 * run off the turn path, never fail it, and are awaited on shutdown. None goes out while the owner watches the chat:
 * the service worker shows every push it gets, so the server is the one to hold back.
 */
export class TurnPush implements TurnEndListener {
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly opts: TurnPushOptions) {}

  turnEnded(result: TurnResult): void {
    if (result.outcome !== 'waiting' && result.outcome !== 'error') return;
    if (this.opts.watching?.(result.chatId, result.ownerId)) {
      this.opts.metrics.suppressed.inc({ reason: 'owner_watching' });
      return;
    }
    const { uncachedReads } = this.opts;
    const p = (async () => {
      const r = uncachedReads ? await uncachedReads(result) : result;
      await this.opts.dispatch(r.ownerId, turnMessage(r, this.opts.baseUrl()));
    })()
      .catch((err: unknown) => this.opts.logger.warn({ err, chatId: result.chatId }, 'web push: push after turn failed'))
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Resolves when every push started so far has finished. */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
