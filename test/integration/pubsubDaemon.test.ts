import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase } from '../helpers/db.js';

const coderNames = [
  'coder_pubsub_publishes_total',
  'coder_pubsub_subscribes_total',
  'coder_pubsub_messages_total',
  'coder_pubsub_published_bytes_total',
  'coder_pubsub_received_bytes_total',
  'coder_pubsub_disconnections_total',
  'coder_pubsub_connected',
  'coder_pubsub_current_subscribers',
  'coder_pubsub_current_events',
  'coder_pubsub_send_latency_seconds',
  'coder_pubsub_receive_latency_seconds',
  'coder_pubsub_latency_measures_total',
  'coder_pubsub_latency_measure_errs_total',
  'coder_pubsub_dropped_signals_total',
  'coder_pubsub_batch_size',
  'coder_pubsub_batch_flush_duration_seconds',
  'coder_pubsub_batch_queue_depth',
  'coder_pubsub_batch_flushes_total',
  'coder_pubsub_batch_flush_failures_total',
  'coder_pubsub_batch_delegate_fallbacks_total',
];

describe('pubsub in the daemon', () => {
  it('exports the Coder-named metrics on /metrics, with the background probe populating latency', async () => {
    const daemon = await startTestDaemon();
    const got: string[] = [];
    await daemon.pubsub.subscribe('daemon_test', (p) => void got.push(p.toString()));
    await daemon.pubsub.publish('daemon_test', 'hello');
    await expect.poll(() => got).toEqual(['hello']);
    const scrape = async () => (await fetch(`${daemon.url}/metrics`)).text();
    await expect.poll(async () => /coder_pubsub_receive_latency_seconds_count (\d+)/.exec(await scrape())?.[1]).toMatch(/^[1-9]/);
    const text = await scrape();
    for (const name of coderNames) expect(text).toContain(`# TYPE ${name} `);
    expect(text).toMatch(/^coder_pubsub_connected 1$/m);
    expect(text).toMatch(/^coder_pubsub_publishes_total\{success="true"\} [1-9]/m);
    expect(text).toMatch(/^coder_pubsub_send_latency_seconds_count [1-9]/m);
  });

  it('reports a watchdog trip as fatal', async () => {
    // Every reading of the clock is six minutes after the last: no heartbeat can be recent enough.
    let t = 0;
    const clock = { now: () => (t += 6 * 60_000), setTimeout: (fn: () => void, ms: number) => {
      const h = setTimeout(fn, ms);
      return { cancel: () => clearTimeout(h) };
    } };
    const daemon = await startTestDaemon({}, { pubsubWatchdog: { clock } });
    const fatal = await daemon.fatal;
    expect(fatal.message).toMatch(/pubsub watchdog: no heartbeat on pubsub_watchdog/);
  });

  it('runs on the memory backend when asked', async () => {
    const daemon = await startTestDaemon({ pubsub: 'memory' });
    const got: string[] = [];
    await daemon.pubsub.subscribe('mem', (p) => void got.push(p.toString()));
    await daemon.pubsub.publish('mem', 'x');
    await expect.poll(() => got).toEqual(['x']);
  });

  it('leaves nothing that keeps the process alive after close', async () => {
    const { url } = await createTestDatabase();
    const src = (p: string) => fileURLToPath(new URL(`../../src/daemon/${p}`, import.meta.url));
    // No process.exit: the child ends only if close() left no timer, socket or pending promise behind.
    const script = `
      const { createDatabase } = await import(${JSON.stringify(src('postgres/pool.ts'))});
      const { createPostgresPubsub } = await import(${JSON.stringify(src('pubsub/postgres.ts'))});
      const { silentLogger } = await import(${JSON.stringify(src('observability/logger.ts'))});
      const db = createDatabase({ connectionString: process.env.PG_URL, max: 2 });
      const ps = await createPostgresPubsub({ connectionConfig: db.connectionConfig, pool: db, logger: silentLogger(), latencyIntervalMs: 10 });
      let got = 0;
      await ps.subscribe('leak', () => void got++);
      await Promise.all([ps.publish('leak', 'a'), ps.publish('leak', 'b')]);
      while (got < 2) await new Promise((r) => setTimeout(r, 5));
      const first = ps.close();
      const same = ps.close() === first;
      await first;
      await db.close();
      process.stdout.write(JSON.stringify({ got, same }));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, PG_URL: url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(killer);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ got: 2, same: true });
  });
});
