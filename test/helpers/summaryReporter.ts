import type { Reporter, TestModule } from 'vitest/node';

/** Prints one line CI can read: `vitest: N passed, N failed, N skipped`. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>): void {
    const count = { passed: 0, failed: 0, skipped: 0 };
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') count.passed++;
        else if (state === 'failed') count.failed++;
        else count.skipped++;
      }
      // A file that failed to load has no tests but must not read as a pass.
      if (m.state() === 'failed' && !Array.from(m.children.allTests()).some((t) => t.result().state === 'failed')) count.failed++;
    }
    count.failed += errors.length;
    process.stdout.write(`vitest: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`);
  }
}
