import { randomUUID } from 'node:crypto';

import type { DbStats } from '../postgres/pool.js';
import type { Publisher, Subscriber } from '../pubsub/pubsub.js';

export type Severity = 'ok' | 'warning' | 'error';

export interface HealthCheck {
  name: 'database' | 'pubsub' | 'notify_queue' | 'pool' | 'webpush';
  severity: Severity;
  message: string;
  /** The figure the severity was judged on (milliseconds, a fraction, a count). */
  value?: number;
}

export interface HealthReport {
  severity: Severity;
  checked_at: string;
  checks: HealthCheck[];
}

const rank: Record<Severity, number> = { ok: 0, warning: 1, error: 2 };

export function report(checks: HealthCheck[]): HealthReport {
  const severity = checks.reduce<Severity>((worst, c) => (rank[c.severity] > rank[worst] ? c.severity : worst), 'ok');
  return { severity, checked_at: new Date().toISOString(), checks };
}

/** Thresholds: warnings are worth a look, errors mean users are affected. */
export const thresholds = {
  dbLatencyWarnMs: 100,
  pubsubLatencyWarnMs: 250,
  notifyQueueWarn: 0.5,
  notifyQueueError: 0.9,
  /** A failed push share over the window, with at least `pushMinSends` sent. */
  pushFailureWarn: 0.1,
  pushFailureError: 0.5,
  pushMinSends: 5,
};

const elapsedMs = (since: number) => Math.round((performance.now() - since) * 10) / 10;
const failure = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!;

export async function checkDatabase(ping: (signal: AbortSignal) => Promise<void>, timeoutMs = 2000): Promise<HealthCheck> {
  const started = performance.now();
  try {
    await ping(AbortSignal.timeout(timeoutMs));
  } catch (err) {
    return { name: 'database', severity: 'error', message: `the database did not answer: ${failure(err)}` };
  }
  const ms = elapsedMs(started);
  const slow = ms > thresholds.dbLatencyWarnMs;
  return { name: 'database', severity: slow ? 'warning' : 'ok', message: `answered in ${ms} ms${slow ? ` (over ${thresholds.dbLatencyWarnMs} ms)` : ''}`, value: ms };
}

export async function checkNotifyQueue(usage: (signal: AbortSignal) => Promise<number>): Promise<HealthCheck> {
  let u: number;
  try {
    u = await usage(AbortSignal.timeout(2000));
  } catch (err) {
    return { name: 'notify_queue', severity: 'error', message: `pg_notification_queue_usage() failed: ${failure(err)}` };
  }
  const severity: Severity = u >= thresholds.notifyQueueError ? 'error' : u >= thresholds.notifyQueueWarn ? 'warning' : 'ok';
  const hint = severity === 'ok' ? '' : ': a listener is behind or a long transaction holds the queue';
  return { name: 'notify_queue', severity, message: `NOTIFY queue ${(u * 100).toFixed(2)}% used${hint}`, value: u };
}

/** Publishes on a private channel and times the echo: proves this process both sends and receives. */
export async function checkPubsub(pubsub: Publisher & Subscriber, timeoutMs = 2000): Promise<HealthCheck> {
  const channel = `health:${randomUUID()}`;
  const token = randomUUID();
  let cancel: (() => Promise<void>) | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const started = performance.now();
    const heard = new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no echo within ${timeoutMs} ms`)), timeoutMs);
      void pubsub
        .subscribe(channel, (payload) => {
          if (payload.toString() === token) resolve();
        })
        .then((c) => {
          cancel = c;
          return pubsub.publish(channel, token);
        })
        .catch(reject);
    });
    await heard;
    const ms = elapsedMs(started);
    const slow = ms > thresholds.pubsubLatencyWarnMs;
    return { name: 'pubsub', severity: slow ? 'warning' : 'ok', message: `connected; a probe came back in ${ms} ms`, value: ms };
  } catch (err) {
    return { name: 'pubsub', severity: 'error', message: `the pubsub probe failed: ${failure(err)}` };
  } finally {
    clearTimeout(timer);
    await cancel?.().catch(() => undefined);
  }
}

export function checkPool(stats: DbStats): HealthCheck {
  const { waiting, total, poolMax } = stats;
  const severity: Severity = waiting >= 5 * poolMax ? 'error' : waiting > 0 ? 'warning' : 'ok';
  return {
    name: 'pool',
    severity,
    message: `${total}/${poolMax} connections open, ${waiting} request(s) waiting for one; p99 acquire wait since start ${(stats.acquireWait.p99 * 1000).toFixed(1)} ms`,
    value: waiting,
  };
}

export function checkPushes(recent: { sent: number; failed: number; windowSeconds: number } | undefined): HealthCheck {
  if (!recent) return { name: 'webpush', severity: 'ok', message: 'web push is off' };
  const { sent, failed, windowSeconds } = recent;
  const share = sent === 0 ? 0 : failed / sent;
  const enough = sent >= thresholds.pushMinSends;
  const severity: Severity = enough && share >= thresholds.pushFailureError ? 'error' : enough && share >= thresholds.pushFailureWarn ? 'warning' : 'ok';
  return { name: 'webpush', severity, message: `${failed} of ${sent} push(es) failed in the last ${Math.round(windowSeconds / 60)} min`, value: failed };
}

export interface DaemonHealthSources {
  ping: (signal: AbortSignal) => Promise<void>;
  notifyQueueUsage: (signal: AbortSignal) => Promise<number>;
  pubsub: Publisher & Subscriber;
  poolStats: () => DbStats;
  /** Absent when web push is off. */
  recentPushes?: () => Promise<{ sent: number; failed: number; windowSeconds: number }>;
}

/** A running daemon's report (`GET /api/v2/debug/health`): every check at once. */
export async function daemonHealth(s: DaemonHealthSources): Promise<HealthReport> {
  const [database, pubsub, notifyQueue, pushes] = await Promise.all([
    checkDatabase(s.ping),
    checkPubsub(s.pubsub),
    checkNotifyQueue(s.notifyQueueUsage),
    s.recentPushes ? s.recentPushes().then(checkPushes) : Promise.resolve(checkPushes(undefined)),
  ]);
  return report([database, pubsub, notifyQueue, checkPool(s.poolStats()), pushes]);
}
