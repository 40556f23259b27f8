import { parentPort, workerData } from 'node:worker_threads';

import { startPushSink } from './pushSink.js';

/** From the sink's thread: its URL, once. */
export type FromSink = { type: 'ready'; url: string };

/** What the sink's thread is started with: the shared counter of accepted notifications (one Int32). */
export interface SinkThreadData {
  received: Int32Array;
}

const port = parentPort!;
const { received } = workerData as SinkThreadData;
// The count is stored before the push is answered, so the main thread sees it by the time the daemon learns the push
// went through; a shared counter rather than a message per push, which would wake the daemon's event loop each time.
const sink = await startPushSink({ onReceived: (count) => Atomics.store(received, 0, count) });
port.once('message', () => void sink.close().then(() => port.close()));
port.postMessage({ type: 'ready', url: sink.url } satisfies FromSink);
