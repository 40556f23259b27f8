import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

import { version } from '../daemon/config.js';
import type { RunMetadata } from './report.js';

/** The checkout's commit, when this runs from one (a packaged install has none). */
function gitCommit(): string | undefined {
  try {
    const cwd = fileURLToPath(new URL('../..', import.meta.url));
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export function runMetadata(argv: string[]): Omit<RunMetadata, 'sampleIntervalMs'> {
  // The token is a credential: the command line is stored in reports that get shared.
  const shown = argv.map((a, i) => (argv[i - 1] === '--token' ? '[redacted]' : a.startsWith('--token=') ? '--token=[redacted]' : a));
  return {
    version,
    gitCommit: gitCommit(),
    commandLine: ['coder-lite', 'scaletest', 'run', ...shown].join(' '),
    node: process.version,
    hostCores: availableParallelism(),
  };
}
