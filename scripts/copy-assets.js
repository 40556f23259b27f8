// tsc emits only JavaScript: copy the SQL migrations (and later static assets) next to it.
import { cpSync, existsSync } from 'node:fs';

const assets = ['daemon/postgres/migrations', 'daemon/http/static'];
for (const dir of assets) {
  if (existsSync(`src/${dir}`)) cpSync(`src/${dir}`, `dist/${dir}`, { recursive: true });
}
