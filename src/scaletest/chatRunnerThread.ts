import { parentPort, workerData } from 'node:worker_threads';

import { ChatRunner, type ChatRunnerOptions } from './chatRunner.js';
import type { ChatRunnerLike, ThreadReport } from './chatRunnerWorker.js';

/** Main → thread: release the barrier, or stop (`deadline` makes unfinished chats fail as timeout). */
export type ToRunner = { type: 'go' } | { type: 'stop'; deadline: boolean };
/** Thread → main: progress now and then, the full results at the end. */
export type FromRunner = { type: 'progress'; progress: ChatRunnerLike['progress'] } | { type: 'done'; report: ThreadReport };

const port = parentPort!;
const stop = new AbortController();
const runner = new ChatRunner({ ...(workerData as Omit<ChatRunnerOptions, 'signal' | 'timeoutReason'>), signal: stop.signal, timeoutReason: 'deadline' });
let release!: () => void;
const barrier = new Promise<void>((resolve) => (release = resolve));
// Progress is copied over every 100 ms: the main thread samples it once a second.
const ticker = setInterval(() => port.postMessage({ type: 'progress', progress: runner.progress } satisfies FromRunner), 100);
port.on('message', (m: ToRunner) => {
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
    timeToRunning: runner.timeToRunning.summary(),
    timeToFirstPart: runner.timeToFirstPart.summary(),
    turnDuration: runner.turnDuration.summary(),
  },
} satisfies FromRunner);
port.close();
