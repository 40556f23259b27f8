import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const oxlint = join(root, 'node_modules/.bin/oxlint');

/** Lints a copy of a fixture folder with the project's config (the tree itself ignores test/lint-fixtures). */
function lintFixture(name: string) {
  const dir = mkdtempSync(join(tmpdir(), 'coder-lite-lint-'));
  cpSync(join(root, 'test/lint-fixtures', name), dir, { recursive: true });
  try {
    const res = spawnSync(oxlint, ['-c', join(root, '.oxlintrc.json'), dir], { encoding: 'utf8' });
    return { code: res.status, out: `${res.stdout}${res.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the linter (npm run lint)', () => {
  it('fails on a planted import cycle', () => {
    const { code, out } = lintFixture('cycle');
    expect(code).toBe(1);
    expect(out).toContain('import(no-cycle)');
  });

  it("fails when the daemon imports a command (DESIGN §2's layering)", () => {
    const { code, out } = lintFixture('layering');
    expect(code).toBe(1);
    expect(out).toContain('no-restricted-imports');
    expect(out).toContain('the daemon does not depend on commands');
  });
});
