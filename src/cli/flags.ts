import { Flags } from '@oclif/core';

import { ConfigError, parseDuration, parseHttpAddress, parseHttpUrl, parseLifetime, parsePostgresUrl } from '../daemon/config.js';

/** A flag value that cannot work; its message names where the value came from (the flag or its env variable). */
export class FlagValueError extends Error {}

interface ParseContext {
  token?: unknown;
}

/** `--name`, or the env variable when oclif took the value from there (it passes no token then). */
function source(ctx: ParseContext, opts: { name: string; env?: string }): string {
  return ctx.token === undefined && opts.env ? opts.env : `--${opts.name}`;
}

/** Runs a daemon/config.ts validator and rewrites its message to name the real source of the value. */
function checked<T>(validate: (value: string, name: string) => T) {
  return async (input: string, ctx: ParseContext, opts: { name: string; env?: string }): Promise<T> => {
    const name = source(ctx, opts);
    try {
      return validate(input, name);
    } catch (err) {
      if (err instanceof ConfigError) throw new FlagValueError(err.message.replaceAll(`--${opts.name}`, name), { cause: err });
      throw err;
    }
  };
}

/** An integer in [min, max]; the error names the flag or its env variable. */
export const intFlag = Flags.custom<number, { min: number; max: number }>({
  parse: async (input, ctx, opts) => {
    const n = Number(input.trim());
    if (input.trim() === '' || !Number.isInteger(n) || n < opts.min || n > opts.max) {
      throw new FlagValueError(`invalid ${source(ctx, opts)} "${input}": expected a whole number from ${opts.min} to ${opts.max}`);
    }
    return n;
  },
});

/** A number, 0 or more (milliseconds, a rate); `positive` refuses 0 too. */
export const numberFlag = Flags.custom<number, { positive?: boolean }>({
  parse: async (input, ctx, opts) => {
    const n = Number(input.trim());
    if (input.trim() === '' || !Number.isFinite(n) || n < 0 || (opts.positive && n === 0)) {
      throw new FlagValueError(`invalid ${source(ctx, opts)} "${input}": expected a number${opts.positive ? ' above 0' : ', 0 or more'}`);
    }
    return n;
  },
});

/**
 * `250ms`, `30s`, `10m`, or bare milliseconds; the value is milliseconds. Defaults stay plain numbers: a computed
 * `defaultHelp` would make oclif import the command for `--help`, which costs start-up time.
 */
export const durationFlag = Flags.custom<number>({ parse: checked((v, name) => parseDuration(name, v)) });

export const postgresUrlFlag = Flags.custom<string>({ parse: checked((v) => parsePostgresUrl(v)) });

/** `host:port`, kept as written (the daemon parses it again when it listens). */
export const httpAddressFlag = Flags.custom<string>({ parse: checked((v) => (parseHttpAddress(v), v)) });

/** An absolute http(s) URL, kept as written: `new URL()` would add a trailing slash the daemon then puts in links. */
export const httpUrlFlag = Flags.custom<string>({ parse: checked((v, name) => (parseHttpUrl(name, v), v)) });

/** A token lifetime (`30d`, `12h`); the value is seconds. */
export const lifetimeFlag = Flags.custom<number>({ parse: checked((v, name) => parseLifetime(name, v)) });
