import { Worker } from 'node:worker_threads';

import type { LatencySummary } from '../daemon/observability/quantiles.js';
import type { ChatRunner, ChatRunnerOptions } from './chatRunner.js';
import type { ChatRunnerLike, FromWorker, ToWorker, WorkerReport } from './chatRunnerProtocol.js';

const fixed = (s: () => LatencySummary) => ({ summary: s });

/**
 * The chat clients on a thread of their own: 5,000 WebSockets and their HTTP calls are the load, not the daemon
 * under test, so they must not share its event loop. Same contract as `ChatRunner`.
 */
export class ThreadChatRunner implements ChatRunnerLike {
  progress: ChatRunner['progress'] = { turnsCompleted: 0, chatsPassed: 0, chatsFailed: 0, active: 0, failures: {}, pushesExpected: 0 };
  failureSamples: ChatRunner['failureSamples'] = [];
  created: ChatRunner['created'] = [];
  parts: ChatRunner['parts'] = {};
  private final?: WorkerReport;
  private recent: number[] = [];
  private readonly empty: LatencySummary = { count: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  readonly timeToRunning = fixed(() => this.final?.timeToRunning ?? this.empty);
  readonly timeToFirstPart = fixed(() => this.final?.timeToFirstPart ?? this.empty);
  readonly turnDuration = fixed(() => this.final?.turnDuration ?? this.empty);

  constructor(private readonly opts: ChatRunnerOptions) {}

  takeRecentTurnDurations(): number[] {
    const r = this.recent;
    this.recent = [];
    return r;
  }

  async run(barrier: Promise<void>): Promise<void> {
    const { signal, timeoutReason, ...data } = this.opts;
    const worker = new Worker(new URL('./chatRunnerWorker.js', import.meta.url), { workerData: data });
    const send = (m: ToWorker) => worker.postMessage(m);
    const onAbort = () => send({ type: 'stop', deadline: timeoutReason !== undefined && signal.reason === timeoutReason });
    const done = new Promise<void>((resolve, reject) => {
      worker.on('error', reject);
      worker.on('exit', () => (this.final ? resolve() : reject(new Error('the chat runner thread exited without a report'))));
      worker.on('message', (m: FromWorker) => {
        for (const d of m.recentTurnDurations) this.recent.push(d);
        if (m.type === 'progress') this.progress = m.progress;
        else {
          this.final = m.report;
          this.progress = m.report.progress;
          this.failureSamples = m.report.failureSamples;
          this.created = m.report.created;
          this.parts = m.report.parts;
        }
      });
    });
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    try {
      await barrier;
      send({ type: 'go' });
      await done;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
}
