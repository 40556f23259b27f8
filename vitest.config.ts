import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    globalSetup: ['test/helpers/globalSetup.ts'],
    reporters: ['default', './test/helpers/summaryReporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    env: { OCLIF_SKIP_NEW_VERSION_CHECK: 'true', NO_COLOR: '1' },
  },
});
