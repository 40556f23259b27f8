import { parentPort, workerData } from 'node:worker_threads';

import { ChatRunner, type ChatRunnerOptions } from './chatRunner.js';
import type { FromWorker, ToWorker } from './chatRunnerProtocol.js';

// The worker thread's script (Node's Worker): runs the chat clients off the main thread; ThreadChatRunner starts it.

const port = parentPort!;
const stop = new AbortController();
const runner = new ChatRunner({ ...(workerData as Omit<ChatRunnerOptions, 'signal' | 'timeoutReason'>), signal: stop.signal, timeoutReason: 'deadline' });
let release!: () => void;
const barrier = new Promise<void>((resolve) => (release = resolve));
// Progress is copied over every 100 ms: the main thread samples it once a second.
const ticker = setInterval(() => port.postMessage({ type: 'progress', progress: runner.progress, recentTurnDurations: runner.takeRecentTurnDurations() } satisfies FromWorker), 100);
port.on('message', (m: ToWorker) => {
  if (m.type === 'go') release();
  else stop.abort(m.deadline ? 'deadline' : new Error('interrupted'));
});
await runner.run(barrier);
clearInterval(ticker);
port.postMessage({
  type: 'done',
  report: {
    progress: runner.progress,
    failureSamples: runner.failureSamples,
    created: runner.created,
    parts: runner.parts,
    timeToRunning: runner.timeToRunning.summary(),
    timeToFirstPart: runner.timeToFirstPart.summary(),
    turnDuration: runner.turnDuration.summary(),
  },
  recentTurnDurations: runner.takeRecentTurnDurations(),
} satisfies FromWorker);
port.close();
