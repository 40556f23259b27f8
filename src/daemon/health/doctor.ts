import type { Logger } from '../observability/logger.js';
import { createDatabase } from '../postgres/pool.js';
import { createPostgresPubsub } from '../pubsub/postgres.js';
import { notificationQueueUsage, ping } from '../store/health.js';
import { checkDatabase, checkNotifyQueue, checkPubsub, report, type HealthCheck, type HealthReport } from './report.js';

/**
 * The checks that need only the database, for `doctor --postgres-url` (no server to ask): reachable and its latency,
 * the NOTIFY queue, and a LISTEN/NOTIFY round trip. Pool pressure and push failures are a running server's figures.
 */
export async function doctorDatabase(url: string, logger: Logger): Promise<HealthReport> {
  const db = createDatabase({ connectionString: url, max: 2, applicationName: 'coder-lite doctor' });
  try {
    const database = await checkDatabase((signal) => ping(db, signal), 5000);
    if (database.severity === 'error') return report([database]);
    const checks: HealthCheck[] = [database, await checkNotifyQueue((signal) => notificationQueueUsage(db, signal))];
    try {
      const pubsub = await createPostgresPubsub({ connectionConfig: db.connectionConfig, pool: db, logger, latencyIntervalMs: 0 });
      try {
        checks.push(await checkPubsub(pubsub));
      } finally {
        await pubsub.close();
      }
    } catch (err) {
      checks.push({ name: 'pubsub', severity: 'error', message: `cannot LISTEN: ${(err as Error).message}` });
    }
    return report(checks);
  } finally {
    await db.close();
  }
}

/** `doctor --url`: the server's own report (`GET /api/v2/debug/health`, admin); an unreachable server is an error. */
export async function doctorServer(baseUrl: string, token: string): Promise<HealthReport> {
  const url = new URL('/api/v2/debug/health', baseUrl);
  let res: Response;
  try {
    res = await fetch(url, { headers: { 'coder-session-token': token }, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    return report([{ name: 'database', severity: 'error', message: `cannot reach ${url.origin}: ${(err as Error).message}` }]);
  }
  const body = (await res.json().catch(() => ({}))) as Partial<HealthReport> & { message?: string };
  if (!res.ok || !Array.isArray(body.checks)) throw new DoctorRequestError(`${url.origin} answered ${res.status}: ${body.message ?? 'not a health report'}`);
  return body as HealthReport;
}

/** The server refused the request (a bad token, not an admin): not a health finding. */
export class DoctorRequestError extends Error {}
