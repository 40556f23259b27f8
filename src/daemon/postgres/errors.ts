import pg from 'pg';

/**
 * The database could not be reached or dropped the connection mid-statement. The statement may or may not have
 * committed; the connection it ran on is destroyed. HTTP answers 503 with Retry-After; workers retry.
 */
export class DatabaseUnavailableError extends Error {
  readonly code = 'DATABASE_UNAVAILABLE';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
  }
}

const socketCodes = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOENT', 'ECONNABORTED']);

/**
 * SQLSTATEs that mean the connection (or the server) is gone: 57P01 admin shutdown, 57P02 crash shutdown,
 * 57P03 cannot connect now (starting up or shutting down), 08xxx connection exceptions, 53300 too many connections.
 */
function isConnectionSqlState(code: string): boolean {
  return code === '57P01' || code === '57P02' || code === '57P03' || code === '53300' || code.startsWith('08');
}

/** True when `err` says the connection is unusable (as opposed to a statement that failed on a healthy connection). */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (err instanceof pg.DatabaseError) return typeof code === 'string' && isConnectionSqlState(code);
  if (typeof code === 'string' && (socketCodes.has(code) || isConnectionSqlState(code))) return true;
  // pg and pg-pool raise these as plain Errors without a code.
  return /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Client was closed|Connection ended/i.test(err.message);
}

/** Wraps a connection failure in DatabaseUnavailableError (cause kept); any other error is returned as is. */
export function asDatabaseError(err: unknown, doing: string): unknown {
  if (err instanceof DatabaseUnavailableError || !isConnectionError(err)) return err;
  return new DatabaseUnavailableError(`the database is unavailable (${doing})`, { cause: err });
}
