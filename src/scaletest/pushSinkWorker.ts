import { Worker } from 'node:worker_threads';

import { newSinkSubscription } from './pushSink.js';
import type { FromSink } from './pushSinkThread.js';
import type { PushSink } from './runner.js';

/**
 * The loopback push sink on a thread of its own: decrypting and verifying every notification is the push service's
 * work, not the daemon's, so it must not take the daemon's event loop.
 */
export async function startPushSinkWorker(): Promise<PushSink> {
  const worker = new Worker(new URL('./pushSinkThread.js', import.meta.url));
  let received = 0;
  const url = await new Promise<string>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: FromSink) => {
      if (m.type === 'ready') resolve(m.url);
      else received = Math.max(received, m.count);
    });
  });
  return {
    newSubscription: () => newSinkSubscription(url),
    received: () => received,
    close: () =>
      new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage('close');
      }),
  };
}
