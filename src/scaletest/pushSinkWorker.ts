import { Worker } from 'node:worker_threads';

import { newSinkSubscription } from './pushSink.js';
import type { FromSink, SinkThreadData } from './pushSinkThread.js';
import type { PushSink } from './runner.js';

/**
 * The loopback push sink on a thread of its own: decrypting and verifying every notification is the push service's
 * work, not the daemon's, so it must not take the daemon's event loop.
 */
export async function startPushSinkWorker(): Promise<PushSink> {
  const received = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  const worker = new Worker(new URL('./pushSinkThread.js', import.meta.url), { workerData: { received } satisfies SinkThreadData });
  const url = await new Promise<string>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: FromSink) => resolve(m.url));
  });
  return {
    newSubscription: () => newSinkSubscription(url),
    received: () => Atomics.load(received, 0),
    close: () =>
      new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage('close');
      }),
  };
}
