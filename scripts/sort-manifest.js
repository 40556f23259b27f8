// oclif writes commands in the order they finished loading, which varies from build to build: sort them so that
// building leaves the checked-in manifest unchanged.
import { readFileSync, writeFileSync } from 'node:fs';

const file = 'oclif.manifest.json';
const manifest = JSON.parse(readFileSync(file, 'utf8'));
manifest.commands = Object.fromEntries(Object.entries(manifest.commands).sort(([a], [b]) => a.localeCompare(b)));
writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
