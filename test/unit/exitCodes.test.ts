import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { ExitCode } from '../../src/cli/exitCodes.js';

describe('exit codes', () => {
  it("oclif's parse errors exit with the usage code declared in src/cli/exitCodes.ts", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { oclif: { exitCodes: Record<string, number> } };
    for (const [kind, code] of Object.entries(pkg.oclif.exitCodes)) expect(code, kind).toBe(ExitCode.usage);
  });
});
