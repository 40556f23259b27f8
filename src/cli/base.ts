import { Command, Errors, Flags } from '@oclif/core';

import { ExitCode } from './exitCodes.js';
import { FlagValueError, postgresUrlFlag } from './flags.js';

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
  'postgres-url': postgresUrlFlag({
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
    const msg = anyErr.message || anyErr.code || (anyErr.errors?.[0] as Error | undefined)?.message || String(e as string);
    if (!parts.some((p) => p.includes(msg))) parts.push(msg);
  }
  return parts.join(': ').replace(/\s*\n\s*/g, ' ');
}

/** The exit status of a failure: oclif's errors carry theirs (package.json `oclif.exitCodes`), ours carry `exit`. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof FlagValueError) return ExitCode.usage;
  return (err as { oclif?: { exit?: number } }).oclif?.exit ?? ExitCode.failure;
}

/** What a failure prints: oclif's parse decorations ("Parsing --x", "See more help") go, the reason stays. */
export function errorMessage(err: unknown): string {
  return describeError(err)
    .replace(/^Parsing --\S+\s*/, '')
    .replace(/\s*See more help with --help\.?/g, '');
}

/**
 * Commands print a failure as one readable line on stderr, or under --json as `{"error":{"message","code"}}` on
 * stdout (code: the exit status). A stack trace follows only with --log-level debug (or trace).
 */
export abstract class BaseCommand extends Command {
  static override baseFlags = { 'log-level': logLevelFlag };

  private get debugEnabled(): boolean {
    const i = this.argv.findIndex((a) => a === '--log-level' || a.startsWith('--log-level='));
    const level = i < 0 ? process.env.CODER_LITE_LOG_LEVEL : this.argv[i]!.includes('=') ? this.argv[i]!.split('=')[1] : this.argv[i + 1];
    return level === 'debug' || level === 'trace';
  }

  /** --json asked for (enableJsonFlag, or a command's own --json such as `pubsub tail`'s NDJSON). */
  private get jsonOutput(): boolean {
    const ctor = this.constructor as typeof Command;
    const end = this.argv.indexOf('--');
    const argv = end < 0 ? this.argv : this.argv.slice(0, end);
    return (ctor.enableJsonFlag || 'json' in (ctor.flags ?? {})) && argv.includes('--json');
  }

  /** Throw for a usage error: a value that cannot work. */
  protected usageError(message: string): never {
    throw new Errors.CLIError(message, { exit: ExitCode.usage });
  }

  /** One line of JSON: pipes and `jq` read it as well as a pretty block. */
  override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json)}\n`);
  }

  protected override async catch(err: Error): Promise<never> {
    if (err instanceof Errors.ExitError) throw err;
    const code = exitCodeOf(err);
    const message = errorMessage(err);
    if (this.jsonOutput) {
      this.logJson({ error: { message, code } });
    } else {
      const hint = code === ExitCode.usage ? ` (see: coder-lite ${this.id?.replaceAll(':', ' ') ?? ''} --help)` : '';
      process.stderr.write(`Error: ${message}${hint}\n`);
    }
    if (this.debugEnabled && err.stack) process.stderr.write(`${err.stack}\n`);
    throw new Errors.ExitError(code);
  }
}
