import { isMainThread } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { parseProcStat, threadsCpuSeconds } from '../../src/scaletest/cpu.js';

describe('scaletest CPU from /proc', () => {
  it('reads utime+stime and the reaped children from a stat line whose command has spaces and parentheses', () => {
    // Fields 1–17 of proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime.
    const line = '4242 (postgres: a) b) S 4200 4200 4200 0 -1 4194560 100 0 0 0 250 50 700 300 20 0 1 0 123 456 789';
    expect(parseProcStat(line)).toEqual({ ppid: 4200, ownSeconds: 3, reapedChildrenSeconds: 10 });
  });

  // process.pid names the main thread: the test must run on it (vitest's default pool forks a process per file).
  it.runIf(process.platform === 'linux' && isMainThread)("counts this thread's CPU time as it burns some", async () => {
    const before = (await threadsCpuSeconds([process.pid]))!;
    expect(before).toBeGreaterThan(0);
    // Spin until the kernel has charged at least one more tick; the loop ends by the clock it measures.
    let after = before;
    while (after === before) {
      for (let i = 0; i < 1e6; i++) Math.sqrt(i);
      after = (await threadsCpuSeconds([process.pid]))!;
    }
    expect(after).toBeGreaterThan(before);
    expect(await threadsCpuSeconds([2 ** 30])).toBeUndefined();
  });
});
