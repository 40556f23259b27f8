import { Box, Text, useInput, useStdin } from 'ink';

import { failureKinds, failureLabels } from '../scaletest/report.js';
import type { LiveProgress, Phase } from '../scaletest/runner.js';

export interface ScaletestProgressProps {
  progress: LiveProgress;
  /** Colour output (off for NO_COLOR). */
  color?: boolean;
  /** Ctrl-C or q on the keyboard: stop the run and print the partial report. */
  onInterrupt?: () => void;
  /** Set once a stop was asked for, so the view says what is happening. */
  stopping?: boolean;
  /** Bar width in cells. */
  barWidth?: number;
}

const phaseLabel: Record<Phase, string> = {
  starting: 'starting…',
  setup: 'creating users and push subscriptions…',
  running: 'running',
  draining: 'waiting for the last pushes…',
  done: 'done',
};

function num(v: number, digits = 0): string {
  const [int, frac] = v.toFixed(digits).split('.');
  const grouped = int!.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return frac ? `${grouped}.${frac}` : grouped;
}

/** The line printed every few seconds when stdout is not a terminal (and the model of what the live view shows). */
/** Completed turns over the whole run so far: the figure the report's "turns/s" is, at its end. */
export function meanTurnsPerSecond(p: LiveProgress): number {
  return p.elapsedSeconds > 0 ? p.turnsCompleted / p.elapsedSeconds : 0;
}

export function progressLine(p: LiveProgress): string {
  const failures = failureKinds.filter((k) => (p.failures[k] ?? 0) > 0).map((k) => `${failureLabels[k]} ${p.failures[k]}`);
  if (p.phase !== 'running') return `scaletest: ${phaseLabel[p.phase]}`;
  return (
    `scaletest: ${p.elapsedSeconds.toFixed(1)}s turns ${p.turnsCompleted}/${p.turnsTotal} (now ${p.turnsPerSecond.toFixed(1)}/s mean ${meanTurnsPerSecond(p).toFixed(1)}/s) ` +
    `chats active ${p.active} passed ${p.chatsPassed} failed ${p.chatsFailed} pool waiting ${p.poolWaiting} open ${p.poolTotal}` +
    (failures.length > 0 ? ` failures: ${failures.join(', ')}` : '')
  );
}

/** The live view of `scaletest run` on a terminal: progress, rate, pool pressure and failures. */
export function ScaletestProgress(props: ScaletestProgressProps) {
  const { isRawModeSupported } = useStdin();
  const { progress: p } = props;
  const color = props.color ?? true;
  const c = (name: string) => (color ? name : undefined);
  useInput(
    (input, key) => {
      if (input === 'q' || (key.ctrl && input === 'c')) props.onInterrupt?.();
    },
    // Without a TTY on stdin there are no keys to read, and Ink would crash trying to enter raw mode.
    { isActive: Boolean(isRawModeSupported) },
  );
  const width = props.barWidth ?? 30;
  const ratio = p.turnsTotal > 0 ? Math.min(1, p.turnsCompleted / p.turnsTotal) : 0;
  const filled = Math.round(ratio * width);
  const failures = failureKinds.filter((k) => (p.failures[k] ?? 0) > 0);
  return (
    <Box flexDirection="column">
      <Box>
        <Text bold>coder-lite scaletest </Text>
        <Text color={c(props.stopping ? 'yellow' : p.phase === 'running' ? 'green' : 'cyan')}>
          {props.stopping ? '■ stopping: finishing the partial report…' : `● ${phaseLabel[p.phase]}`}
        </Text>
        <Text dimColor>{`  ${p.elapsedSeconds.toFixed(1)} s`}</Text>
      </Box>
      <Text>
        {'turns  '}
        <Text color={c('green')}>{'█'.repeat(filled)}</Text>
        <Text dimColor>{'░'.repeat(width - filled)}</Text>
        {`  ${num(p.turnsCompleted)} / ${num(p.turnsTotal)} (${(ratio * 100).toFixed(1)}%)  now ${num(p.turnsPerSecond, 1)} turns/s · mean ${num(meanTurnsPerSecond(p), 1)} turns/s`}
      </Text>
      <Text>
        {`chats  ${num(p.active)} active · ${num(p.chatsPassed)} passed · `}
        <Text color={c(p.chatsFailed > 0 ? 'red' : 'gray')}>{`${num(p.chatsFailed)} failed`}</Text>
        {` of ${num(p.chatsTotal)}`}
      </Text>
      <Text>
        {'pool   waiting '}
        <Text color={c(p.poolWaiting > 0 ? 'yellow' : 'gray')}>{String(p.poolWaiting)}</Text>
        {` · open ${p.poolTotal}`}
      </Text>
      {failures.length > 0 ? (
        <Text color={c('red')}>{`failed  ${failures.map((k) => `${failureLabels[k]}: ${num(p.failures[k]!)}`).join(' · ')}`}</Text>
      ) : null}
      {p.phase === 'done' || props.stopping ? null : <Text dimColor>Ctrl-C or q stops and prints the partial report</Text>}
    </Box>
  );
}
