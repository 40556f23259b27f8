import { describe, expect, it } from 'vitest';

import { compareSummaries, formatComparison, summaryFromText } from '../../src/scaletest/compare.js';
import type { ScaletestSummary } from '../../src/scaletest/report.js';

const a: ScaletestSummary = {
  passed: true,
  interrupted: false,
  pass: 10,
  fail: 0,
  total: 10,
  turns: 30,
  turnsCompleted: 30,
  elapsedSeconds: 2,
  turnsPerSecond: 15,
  poolAcquireWaitP99Ms: 4,
  poolPeakWaiting: 3,
  poolAcquiresPerTurn: 3.5,
  queriesPerTurn: 5,
  daemonCpuMsPerTurn: 2,
  postgresCpuMsPerTurn: 1,
  starvingQueriesPerTurn: { getEnabledChatProviders: 0 },
  pushesExpected: 30,
  pushesReceived: 30,
  failures: {},
  thresholds: [],
};

describe('scaletest compare', () => {
  it('lists the figures that changed with B − A and the relative change', () => {
    const b = { ...a, turnsPerSecond: 30, poolAcquireWaitP99Ms: 2, starvingQueriesPerTurn: { getEnabledChatProviders: 1 } };
    const rows = compareSummaries(a, b);
    expect(rows.find((r) => r.figure === 'turnsPerSecond')).toEqual({ figure: 'turnsPerSecond', a: 15, b: 30, change: 15, relative: 1 });
    expect(rows.find((r) => r.figure === 'starvingQueriesPerTurn.getEnabledChatProviders')).toEqual({
      figure: 'starvingQueriesPerTurn.getEnabledChatProviders',
      a: 0,
      b: 1,
      change: 1,
    });
    const text = formatComparison(rows, ['a.json', 'b.json']);
    expect(text).toMatch(/turnsPerSecond\s+15\s+30\s+\+15 \(\+100\.0%\)/);
    expect(text).toMatch(/poolAcquireWaitP99Ms\s+4\s+2\s+-2 \(-50\.0%\)/);
    expect(text).not.toContain('queriesPerTurn ');
  });

  it('reads a summary from a whole stdout or from its SCALETEST_SUMMARY line', () => {
    expect(summaryFromText(`Scaletest PASS\nSCALETEST_SUMMARY=${JSON.stringify(a)}\n`)).toEqual(a);
    expect(() => summaryFromText('nothing here')).toThrow(/neither a --json report nor a SCALETEST_SUMMARY line/);
  });
});
