import type { LatencySummary } from '../daemon/observability/quantiles.js';
import type { ChatRunner } from './chatRunner.js';

/** What the scaletest reads of a runner, wherever it runs. */
export interface ChatRunnerLike {
  readonly progress: ChatRunner['progress'];
  readonly failureSamples: ChatRunner['failureSamples'];
  readonly created: ChatRunner['created'];
  readonly parts: ChatRunner['parts'];
  readonly timeToRunning: { summary(): LatencySummary };
  readonly timeToFirstPart: { summary(): LatencySummary };
  readonly turnDuration: { summary(): LatencySummary };
  run(barrier: Promise<void>): Promise<void>;
  /** Turn durations (s) finished since the last call. */
  takeRecentTurnDurations(): number[];
}

/** The worker's final results, copied over once at the end. */
export interface WorkerReport {
  progress: ChatRunner['progress'];
  failureSamples: ChatRunner['failureSamples'];
  created: ChatRunner['created'];
  parts: ChatRunner['parts'];
  timeToRunning: LatencySummary;
  timeToFirstPart: LatencySummary;
  turnDuration: LatencySummary;
}

/** Main → worker: release the barrier, or stop (`deadline` makes unfinished chats fail as timeout). */
export type ToWorker = { type: 'go' } | { type: 'stop'; deadline: boolean };
/** Worker → main: progress now and then, the full results at the end. */
export type FromWorker =
  | { type: 'progress'; progress: ChatRunner['progress']; recentTurnDurations: number[] }
  | { type: 'done'; report: WorkerReport; recentTurnDurations: number[] };
