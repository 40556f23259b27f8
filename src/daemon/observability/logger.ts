import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  level: LevelWithSilent;
  format: LogFormat;
  /** Where logs go; stderr by default so stdout stays for data. */
  destination?: NodeJS.WritableStream;
}

// Anything that can carry a secret is censored wherever it appears in a log object.
const redactPaths = [
  'token',
  '*.token',
  'password',
  '*.password',
  'privateKey',
  '*.privateKey',
  'apiKey',
  '*.apiKey',
  'api_key',
  '*.api_key',
  'encryptionKey',
  '*.encryptionKey',
  'postgresUrl',
  '*.postgresUrl',
  'req.headers.authorization',
  'req.headers["coder-session-token"]',
  'req.headers.cookie',
];

export function createLogger(opts: LoggerOptions): Logger {
  const base = { level: opts.level, redact: { paths: redactPaths, censor: '[redacted]' } };
  if (opts.format === 'pretty') {
    const colorize = process.env.NO_COLOR === undefined && (process.env.FORCE_COLOR !== undefined || process.stderr.isTTY);
    return pino(base, pretty({ destination: 2, sync: true, colorize }));
  }
  return pino(base, opts.destination ?? pino.destination({ dest: 2, sync: false }));
}

/** A logger that writes nothing, for tests and library callers that bring none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
