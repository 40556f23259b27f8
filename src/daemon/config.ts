import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

/** A configuration value that cannot work; commands turn it into a usage error (exit 2). */
export class ConfigError extends Error {}

export const version: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface HostPort {
  host: string;
  port: number;
}

/** Parses `host:port`, `:port` or `[v6]:port`; port 0 asks the OS for a free one. */
export function parseHttpAddress(value: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`invalid --http-address "${value}": expected host:port, e.g. 127.0.0.1:3000`);
  const host = m[1] ?? (m[2] || '0.0.0.0');
  if (m[1] !== undefined && isIP(m[1]) !== 6) throw new ConfigError(`invalid --http-address "${value}": "${m[1]}" is not an IPv6 address`);
  if (m[2] && isIP(m[2]) === 0 && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?$/.test(m[2])) {
    throw new ConfigError(`invalid --http-address "${value}": "${m[2]}" is not a host name or IP address`);
  }
  return { host, port };
}

export function parsePostgresUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('invalid --postgres-url: expected postgres://user:password@host:port/database');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(`invalid --postgres-url: the scheme must be postgres:// (got ${url.protocol}//)`);
  }
  return value;
}

export function positiveInt(name: string, value: number, max = 1_000_000): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new ConfigError(`invalid ${name} ${value}: expected a whole number from 1 to ${max}`);
  return value;
}

/** `250ms`, `2s`, `1.5m`, `1h`, or a bare number of milliseconds. */
export function parseDuration(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new ConfigError(`invalid ${flag} "${value}": expected a duration like 250ms, 30s or 10m`);
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms']!;
  if (ms > 24 * 3_600_000) throw new ConfigError(`invalid ${flag} "${value}": at most 24h`);
  return Math.round(ms);
}

/** A token lifetime: `30d`, `12h`, `90m`, `3600s` (or bare seconds), from 1 second to 365 days; the value is seconds. */
export function parseLifetime(flag: string, value: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(value.trim());
  if (!m) throw new ConfigError(`invalid ${flag} "${value}": expected a lifetime like 30d, 12h or 90m`);
  const seconds = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] ?? 's']!;
  if (seconds < 1 || seconds > 365 * 86_400) throw new ConfigError(`invalid ${flag} "${value}": from 1s to 365d`);
  return seconds;
}

export function parseHttpUrl(flag: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`invalid ${flag} "${value}": expected an absolute http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`invalid ${flag} "${value}": the scheme must be http or https`);
  return url;
}
