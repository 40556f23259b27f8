import { readFile } from 'node:fs/promises';

import { FlagValueError } from './flags.js';

interface FlagShape {
  type: 'boolean' | 'option';
  allowNo?: boolean;
  env?: string;
}

/** A config file's keys are the flag names (`http-address: 0.0.0.0:3000`); this reads one into flag tokens. */
export async function readConfigFile(path: string, flags: Record<string, FlagShape>, skip: ReadonlySet<string>): Promise<Map<string, string>> {
  let doc: unknown;
  try {
    // Loaded here, not at start-up: `server --help` imports this module and must stay fast.
    const { parse: parseYaml } = await import('yaml');
    doc = parseYaml(await readFile(path, 'utf8'));
  } catch (err) {
    throw new FlagValueError(`cannot read --config ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || doc === undefined) return new Map();
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new FlagValueError(`--config ${path}: expected a mapping of flag names to values`);
  const tokens = new Map<string, string>();
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const flag = flags[key];
    if (!flag || skip.has(key)) throw new FlagValueError(`--config ${path}: unknown key "${key}" (keys are the flag names of \`coder-lite server --help\`)`);
    if (flag.type === 'boolean') {
      if (typeof value !== 'boolean') throw new FlagValueError(`--config ${path}: ${key} must be true or false`);
      if (value) tokens.set(key, `--${key}`);
      else if (flag.allowNo) tokens.set(key, `--no-${key}`);
    } else {
      if (typeof value !== 'string' && typeof value !== 'number') throw new FlagValueError(`--config ${path}: ${key} must be a string or a number`);
      tokens.set(key, `--${key}=${value}`);
    }
  }
  return tokens;
}

const redacted = '[redacted]';

/** Values that are secrets, or URLs that may hold one (postgres password, NATS user:password@ or token@). */
export function redactConfig(config: Record<string, unknown>, secretKeys: ReadonlySet<string>, urlKeys: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined) continue;
    if (secretKeys.has(key)) out[key] = redacted;
    else if (urlKeys.has(key) && typeof value === 'string') out[key] = value.split(',').map(redactUrl).join(',');
    else out[key] = value;
  }
  return out;
}

function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = redacted;
    else if (url.username && !url.password && url.protocol.startsWith('nats')) url.username = redacted;
    return url.toString().replace(encodeURIComponent(redacted), redacted);
  } catch {
    return redacted;
  }
}

/** `10000` → `10s`: durations written back the way a person writes them (and `--config` reads them). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

export async function toYaml(config: Record<string, unknown>): Promise<string> {
  const { stringify } = await import('yaml');
  return stringify(config);
}
