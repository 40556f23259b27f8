import { parentPort, workerData } from 'node:worker_threads';

import { startLlmMock, type LlmMockOptions } from './llmMock.js';

/** From the mock's thread: its base URL, once it listens. */
export type FromLlmMock = { type: 'ready'; baseUrl: string };

const port = parentPort!;
// The counters are on a SharedArrayBuffer: the main thread reads them without a message per request.
const mock = await startLlmMock(workerData as LlmMockOptions);
port.once('message', () => void mock.close().then(() => port.close()));
port.postMessage({ type: 'ready', baseUrl: mock.baseUrl } satisfies FromLlmMock);
