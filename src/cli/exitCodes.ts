/**
 * Every exit status the CLI uses, declared once. oclif's own parse errors read theirs from `oclif.exitCodes` in
 * package.json (test/unit/exitCodes.test.ts keeps those equal to `usage`).
 */
export const ExitCode = {
  ok: 0,
  /** Something failed: a database that cannot be reached, a chat that failed in a scaletest. */
  failure: 1,
  /** Bad flags, arguments or values: nothing was done. */
  usage: 2,
  /** k6's code: the run went through but a --threshold did not hold. */
  thresholdsFailed: 99,
  /** 128 + SIGINT, as a shell reports a Ctrl-C. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
