import { setTimeout as sleep } from 'node:timers/promises';

import { ProviderError, type CompletionRequest, type ModelProvider } from './provider.js';

/** A user message containing this makes the fake provider fail the turn (tests of the error path). */
export const fakeFailMarker = '[fake-fail]';

/**
 * The built-in provider: a deterministic reply of `tokens` pieces, each after `delayMs`. The first sentence names
 * the message it answers, so replies are distinguishable and summaries have a sentence to take.
 */
export function fakeProvider(opts: { tokens: number; delayMs: number }): ModelProvider {
  return {
    async complete({ messages, signal, onPart }: CompletionRequest): Promise<string> {
      const last = messages.findLast((m) => m.role === 'user')?.content ?? '';
      if (last.includes(fakeFailMarker)) throw new ProviderError('generic', 'the fake provider was asked to fail');
      const pieces = [`Fake reply to "${last.slice(0, 40)}".`];
      for (let i = 1; i < opts.tokens; i++) pieces.push(` token${i}`);
      let text = '';
      for (const piece of pieces.slice(0, Math.max(1, opts.tokens))) {
        // Without a delay, still yield: a long reply must not hold the event loop.
        await (opts.delayMs > 0 ? sleep(opts.delayMs, undefined, { signal }) : new Promise(setImmediate));
        signal.throwIfAborted();
        text += piece;
        onPart(piece);
      }
      return text;
    },
  };
}
