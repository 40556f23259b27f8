import { Command, Errors, Flags } from '@oclif/core';

/** Flags every command has. */
export const logLevelFlag = Flags.string({
  description: 'Log level; debug also prints stack traces of failures.',
  options: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
  default: 'info',
  env: 'CODER_LITE_LOG_LEVEL',
  helpGroup: 'GLOBAL',
});

/** Flags of commands that talk to the database. */
export const databaseFlags = {
  'postgres-url': Flags.string({
    description: 'PostgreSQL URL. Without it, the embedded PostgreSQL of a running `coder-lite server` in --data-dir is used.',
    env: 'CODER_LITE_POSTGRES_URL',
  }),
  'data-dir': Flags.string({
    description: 'Where `coder-lite server` keeps its state and the embedded PostgreSQL. [default: $XDG_DATA_HOME/coder-lite, ~/.local/share/coder-lite, or /var/lib/coder-lite for root]',
    env: 'CODER_LITE_DATA_DIR',
  }),
};

/** One line for a failure: the message and, where they add something, the messages of its causes. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e && parts.length < 4; e = (e as { cause?: unknown }).cause) {
    const anyErr = e as { message?: string; code?: string; errors?: unknown[] };
    const msg = anyErr.message || anyErr.code || (anyErr.errors?.[0] as Error | undefined)?.message || String(e);
    if (!parts.some((p) => p.includes(msg))) parts.push(msg);
  }
  return parts.join(': ').replace(/\s*\n\s*/g, ' ');
}

/**
 * Commands print failures as one readable line: exit 2 for usage errors (bad flags, arguments or values),
 * 1 for everything else. A stack trace follows only with --log-level debug (or trace).
 */
export abstract class BaseCommand extends Command {
  static override baseFlags = { 'log-level': logLevelFlag };

  protected get debugEnabled(): boolean {
    const level = /--log-level[= ](\w+)/.exec(this.argv.join(' '))?.[1] ?? process.env.CODER_LITE_LOG_LEVEL;
    return level === 'debug' || level === 'trace';
  }

  /** Throw for a usage error: a flag value that cannot work. */
  protected usageError(message: string): never {
    throw new Errors.CLIError(message, { exit: 2 });
  }

  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<never> {
    if (err instanceof Errors.ExitError) throw err;
    const parseError = err.constructor.name.includes('Flag') || err.constructor.name.includes('Arg') || 'parse' in err;
    const code = err.oclif?.exit ?? (parseError ? 2 : 1);
    const hint = code === 2 ? ` (see: coder-lite ${this.id?.replaceAll(':', ' ') ?? ''} --help)` : '';
    const line = describeError(err).replace(/\s*See more help with --help\.?/, '');
    process.stderr.write(`Error: ${line}${hint}\n`);
    if (this.debugEnabled && err.stack) process.stderr.write(`${err.stack}\n`);
    throw new Errors.ExitError(code);
  }
}
