import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';

import { ConfigError, parseDuration } from '../../src/daemon/config.js';
import type { LiveProgress } from '../../src/scaletest/runner.js';
import { progressLine, ScaletestProgress } from '../../src/tui/ScaletestProgress.js';

const base: LiveProgress = {
  phase: 'running',
  elapsedSeconds: 12.34,
  turnsCompleted: 12_345,
  turnsTotal: 50_000,
  turnsPerSecond: 812.34,
  chatsTotal: 5000,
  chatsPassed: 655,
  chatsFailed: 3,
  active: 4321,
  poolWaiting: 4,
  poolTotal: 10,
  failures: { timeout: 2, status_error: 1 },
};

describe('ScaletestProgress', () => {
  it('shows turns done of total with a bar, the rate, chats, pool waiting and failures by kind', () => {
    const app = render(<ScaletestProgress progress={base} color={false} barWidth={20} />);
    const frame = app.lastFrame()!;
    expect(frame).toContain('● running');
    expect(frame).toContain('12.3 s');
    // 24.7 % of 20 cells → 5 filled.
    expect(frame).toContain(`turns  ${'█'.repeat(5)}${'░'.repeat(15)}  12,345 / 50,000 (24.7%)  now 812.3 turns/s · mean 1,000.4 turns/s`);
    expect(frame).toContain('chats  4,321 active · 655 passed · 3 failed of 5,000');
    expect(frame).toContain('pool   waiting 4 · open 10');
    expect(frame).toContain('failed  status error: 1 · timeout: 2');
    app.unmount();
  });

  it('names the phase before and after the run, and says when it is stopping', () => {
    const app = render(<ScaletestProgress progress={{ ...base, phase: 'setup', failures: {} }} color={false} />);
    expect(app.lastFrame()).toContain('creating users and push subscriptions');
    expect(app.lastFrame()).not.toContain('failed  ');
    app.rerender(<ScaletestProgress progress={base} color={false} stopping />);
    expect(app.lastFrame()).toContain('stopping: finishing the partial report');
    app.unmount();
  });
});

describe('progressLine', () => {
  it('is one line with the same figures, for logs', () => {
    expect(progressLine(base)).toBe(
      'scaletest: 12.3s turns 12345/50000 (now 812.3/s mean 1000.4/s) chats active 4321 passed 655 failed 3 pool waiting 4 open 10 failures: status error 1, timeout 2',
    );
    expect(progressLine({ ...base, phase: 'draining' })).toBe('scaletest: waiting for the last pushes…');
  });
});

describe('parseDuration', () => {
  it('reads ms, s, m, h and bare milliseconds, and refuses the rest', () => {
    expect(parseDuration('--x', '250ms')).toBe(250);
    expect(parseDuration('--x', '1.5s')).toBe(1500);
    expect(parseDuration('--x', '2m')).toBe(120_000);
    expect(parseDuration('--x', '1h')).toBe(3_600_000);
    expect(parseDuration('--x', '40')).toBe(40);
    for (const bad of ['', 'fast', '-1s', '1d', '25h']) expect(() => parseDuration('--timeout', bad), bad).toThrow(ConfigError);
    expect(() => parseDuration('--timeout', 'soon')).toThrow('invalid --timeout "soon"');
  });
});
