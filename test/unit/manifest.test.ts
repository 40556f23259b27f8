import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

function commandIds(dir: string, ext: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(ext) && !f.endsWith('.d.ts'))
    .map((f) => relative(dir, join(dir, f)).slice(0, -ext.length).split('/').join(':'))
    .sort();
}

describe('oclif.manifest.json', () => {
  it('lists exactly the commands in src/commands, with their flags', async () => {
    const manifest = JSON.parse(readFileSync(join(root, 'oclif.manifest.json'), 'utf8')) as {
      commands: Record<string, { flags: Record<string, unknown> }>;
    };
    const sources = commandIds(join(root, 'src/commands'), '.ts').concat(commandIds(join(root, 'src/commands'), '.tsx')).sort();
    expect(Object.keys(manifest.commands).sort()).toEqual(sources);
    for (const id of sources) {
      const path = join(root, 'src/commands', `${id.split(':').join('/')}`);
      const mod = (await import(`${path}.ts`).catch(() => import(`${path}.tsx`))) as { default: { flags?: Record<string, unknown>; enableJsonFlag?: boolean } };
      // enableJsonFlag adds --json at parse time; the manifest lists it too.
      const flags = Object.keys({ ...mod.default.flags, 'log-level': 1, ...(mod.default.enableJsonFlag ? { json: 1 } : {}) }).sort();
      expect(Object.keys(manifest.commands[id]!.flags).sort(), id).toEqual(flags);
    }
  });
});
