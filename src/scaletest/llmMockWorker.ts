import { Worker } from 'node:worker_threads';

import { llmMockCounters, mockModel, statsFrom, type LlmMock, type LlmMockOptions } from './llmMock.js';
import type { FromLlmMock } from './llmMockThread.js';

/**
 * The LLM mock on a thread of its own: serving the model is the load generator's work, so it must not take the
 * in-process daemon's event loop (nor be counted in the daemon's CPU per turn). Same contract as `startLlmMock`.
 */
export async function startLlmMockWorker(opts: Omit<LlmMockOptions, 'counters'>): Promise<LlmMock> {
  const counters = new Int32Array(new SharedArrayBuffer(llmMockCounters * Int32Array.BYTES_PER_ELEMENT));
  const worker = new Worker(new URL('./llmMockThread.js', import.meta.url), { workerData: { ...opts, counters } satisfies LlmMockOptions });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: FromLlmMock) => resolve(m.baseUrl));
  });
  let closing: Promise<void> | undefined;
  return {
    baseUrl,
    model: mockModel,
    stats: () => statsFrom(counters),
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage('close');
      })),
  };
}
