import { parentPort } from 'node:worker_threads';

import { startPushSink } from './pushSink.js';

/** From the sink's thread: its URL once, then the running count of accepted notifications. */
export type FromSink = { type: 'ready'; url: string } | { type: 'received'; count: number };

const port = parentPort!;
// Each count is told before the push is answered, so it reaches the main thread ahead of the daemon's next step.
const sink = await startPushSink({ onReceived: (count) => port.postMessage({ type: 'received', count } satisfies FromSink) });
port.once('message', () => void sink.close().then(() => port.close()));
port.postMessage({ type: 'ready', url: sink.url } satisfies FromSink);
