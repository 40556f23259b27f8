/**
 * Publish→deliver throughput and latency of coder-lite's pubsub against pg-listen, on one PostgreSQL, in one run.
 *
 *   npm run bench:pubsub                      # starts a throwaway embedded PostgreSQL
 *   CODER_LITE_BENCH_PG_URL=postgres://… npm run bench:pubsub
 *
 * Saturation: a closed loop keeps WINDOW publishes outstanding for SECONDS; every completion issues the next.
 * Fixed rate: an open loop publishes RATE messages per second on schedule, whatever the replies do.
 * Latency is from the publish call to the subscriber's listener, in this one process.
 *
 * The two are set up as each is meant to be used: coder-lite publishes on a dedicated sender connection and listens on
 * another; pg-listen notifies and listens on its one client. At low rates that favours pg-listen (a backend delivers
 * its own notifications at commit, while another backend must be signalled), under load the batching decides.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import pgListenModule from 'pg-listen';
import { Registry } from 'prom-client';

import { silentLogger } from '../src/daemon/observability/logger.js';
import { LatencyRecorder } from '../src/daemon/observability/quantiles.js';
import { startEmbeddedPostgres } from '../src/daemon/postgres/embedded.js';
import { createDatabase } from '../src/daemon/postgres/pool.js';
import { createPostgresPubsub, type PostgresPubsub } from '../src/daemon/pubsub/postgres.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const window = Number(process.env.BENCH_WINDOW ?? 256);
const rate = Number(process.env.BENCH_RATE ?? 1000);
const warmupSeconds = 1;

/** What the bench needs from a pubsub library: publish, and one subscription that sees every payload. */
interface Contender {
  name: string;
  publish(payload: string): Promise<unknown>;
  onMessage(fn: (payload: string) => void): void;
  close(): Promise<void>;
  extra?(): Promise<string>;
}

interface Figures {
  delivered: number;
  perSecond: number;
  latency: LatencyRecorder;
  errors: number;
}

const channel = 'bench';

/** A counter's value or a histogram's count/sum, from the pubsub's real metrics. */
async function metricValue(registry: Registry, name: string, part: 'count' | 'sum' = 'count'): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  const v = metric?.values.find((x) => String(metric?.type) !== 'histogram' || (x as { metricName?: string }).metricName?.endsWith(`_${part}`));
  return v?.value ?? 0;
}

// CommonJS with `exports.default`: Node hands ESM the exports object, tsx the function itself.
const createSubscriber = (typeof pgListenModule === 'function' ? pgListenModule : pgListenModule.default) as typeof pgListenModule.default;

/** Drives `c` for `durationS` and counts what is delivered after the warm-up. */
async function drive(c: Contender, mode: 'saturation' | 'fixed'): Promise<Figures> {
  const sentAt = new Map<number, number>();
  const latency = new LatencyRecorder();
  let next = 0;
  let measuring = false;
  let delivered = 0;
  let errors = 0;
  let stop = false;
  c.onMessage((payload) => {
    const id = Number(payload.slice(0, payload.indexOf(' ')));
    const t0 = sentAt.get(id);
    if (t0 === undefined) return;
    sentAt.delete(id);
    if (!measuring) return;
    delivered++;
    latency.record((performance.now() - t0) / 1000);
  });
  // ~100 bytes, unique per message (identical payloads would be folded by PostgreSQL within one transaction).
  const pad = 'x'.repeat(80);
  const publishOne = () => {
    const id = next++;
    sentAt.set(id, performance.now());
    return c.publish(`${id} ${pad}`).catch(() => void errors++);
  };

  let loops: Promise<unknown>;
  if (mode === 'saturation') {
    const worker = async () => {
      while (!stop) await publishOne();
    };
    loops = Promise.all(Array.from({ length: window }, worker));
  } else {
    loops = (async () => {
      const start = performance.now();
      let sent = 0;
      while (!stop) {
        const due = Math.floor(((performance.now() - start) / 1000) * rate);
        for (; sent < due; sent++) void publishOne();
        await sleep(1);
      }
    })();
  }
  await sleep(warmupSeconds * 1000);
  measuring = true;
  const t0 = performance.now();
  await sleep(seconds * 1000);
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  stop = true;
  await loops;
  // Let in-flight messages land before the next scenario reuses the channel.
  await sleep(200);
  c.onMessage(() => undefined);
  return { delivered, perSecond: delivered / elapsed, latency, errors };
}

async function coderLite(url: string): Promise<Contender> {
  const db = createDatabase({ connectionString: url, max: 4 });
  const registry = new Registry();
  const ps: PostgresPubsub = await createPostgresPubsub({ connectionConfig: db.connectionConfig, pool: db, logger: silentLogger(), latencyIntervalMs: 0, registry });
  let handler: (p: string) => void = () => undefined;
  await ps.subscribe(channel, (p) => handler(p.toString()));
  const batches = async () => ({
    flushes: await metricValue(registry, 'coder_pubsub_batch_flushes_total'),
    flushedMessages: await metricValue(registry, 'coder_pubsub_batch_size', 'sum'),
  });
  let last = await batches();
  return {
    name: 'coder-lite',
    publish: (payload) => ps.publish(channel, payload),
    onMessage: (fn) => {
      handler = fn;
    },
    async extra() {
      const s = await batches();
      const flushes = s.flushes - last.flushes;
      const msgs = s.flushedMessages - last.flushedMessages;
      last = s;
      return `${flushes} flushes, ${(msgs / Math.max(flushes, 1)).toFixed(1)} msgs/flush`;
    },
    async close() {
      await ps.close();
      await db.close();
    },
  };
}

async function pgListen(url: string): Promise<Contender> {
  // Payloads as they are: pg-listen JSON-encodes by default, which would only add work on both sides.
  const sub = createSubscriber({ connectionString: url }, { parse: (s: string) => s, serialize: (s: unknown) => String(s), paranoidChecking: false });
  let handler: (p: string) => void = () => undefined;
  sub.notifications.on(channel, (p: string) => handler(p));
  sub.events.on('error', () => undefined);
  await sub.connect();
  await sub.listenTo(channel);
  // One query at a time on its one client, chained here as pg asks (it deprecates queueing inside the client).
  let tail: Promise<unknown> = Promise.resolve();
  return {
    name: 'pg-listen',
    publish: (payload) => {
      const sent = tail.then(() => sub.notify(channel, payload));
      tail = sent.catch(() => undefined);
      return sent;
    },
    onMessage: (fn) => {
      handler = fn;
    },
    close: () => sub.close(),
  };
}

const ms = (s: number) => (s * 1000).toFixed(2);
const num = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  let url = process.env.CODER_LITE_BENCH_PG_URL;
  let teardown = async () => {};
  if (!url) {
    // As root, postgres runs as the postgres user: the mkdtemp folder (0700) must be traversable.
    const dir = await mkdtemp(join(tmpdir(), 'coder-lite-bench-'));
    await chmod(dir, 0o755);
    process.stderr.write('starting an embedded PostgreSQL…\n');
    const pg = await startEmbeddedPostgres({ dataDir: dir, logger: silentLogger(), initdbFlags: ['--no-sync'] });
    url = pg.url;
    teardown = async () => {
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }

  const results: Record<string, { sat: Figures; fixed: Figures }> = {};
  try {
    for (const make of [coderLite, pgListen]) {
      const c = await make(url);
      process.stderr.write(`${c.name}: saturation (${window} outstanding, ${seconds} s)…\n`);
      const sat = await drive(c, 'saturation');
      if (c.extra) process.stderr.write(`  ${await c.extra()}\n`);
      process.stderr.write(`${c.name}: ${rate} msg/s (${seconds} s)…\n`);
      const fixed = await drive(c, 'fixed');
      if (c.extra) process.stderr.write(`  ${await c.extra()}\n`);
      await c.close();
      results[c.name] = { sat, fixed };
    }
  } finally {
    await teardown();
  }

  const a = results['coder-lite']!;
  const b = results['pg-listen']!;
  // Latency: lower is better, so the ratio says how many times lower (or higher) coder-lite's figure is.
  const vs = (ours: number, theirs: number) => (ours <= theirs ? `${(theirs / ours).toFixed(1)}× lower` : `${(ours / theirs).toFixed(1)}× higher`);
  const rows: Array<[string, string, string, string]> = [
    ['', 'coder-lite', 'pg-listen', 'coder-lite vs pg-listen'],
    ['saturation: delivered msg/s', num(a.sat.perSecond), num(b.sat.perSecond), `${(a.sat.perSecond / b.sat.perSecond).toFixed(1)}× more`],
    ['saturation: p50 latency ms', ms(a.sat.latency.quantile(0.5)), ms(b.sat.latency.quantile(0.5)), vs(a.sat.latency.quantile(0.5), b.sat.latency.quantile(0.5))],
    ['saturation: p99 latency ms', ms(a.sat.latency.quantile(0.99)), ms(b.sat.latency.quantile(0.99)), vs(a.sat.latency.quantile(0.99), b.sat.latency.quantile(0.99))],
    [`${rate} msg/s: delivered msg/s`, num(a.fixed.perSecond), num(b.fixed.perSecond), ''],
    [`${rate} msg/s: p50 latency ms`, ms(a.fixed.latency.quantile(0.5)), ms(b.fixed.latency.quantile(0.5)), vs(a.fixed.latency.quantile(0.5), b.fixed.latency.quantile(0.5))],
    [`${rate} msg/s: p99 latency ms`, ms(a.fixed.latency.quantile(0.99)), ms(b.fixed.latency.quantile(0.99)), vs(a.fixed.latency.quantile(0.99), b.fixed.latency.quantile(0.99))],
    ['publish errors', String(a.sat.errors + a.fixed.errors), String(b.sat.errors + b.fixed.errors), ''],
  ];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r[0].padEnd(widths[0]!)}  ${r[1].padStart(widths[1]!)}  ${r[2].padStart(widths[2]!)}  ${r[3].padStart(widths[3]!)}\n`);

  const checks: Array<[string, boolean]> = [
    ['≥ 10× pg-listen at saturation', a.sat.perSecond >= 10 * b.sat.perSecond],
    ['p99 ≤ 10 ms at saturation', a.sat.latency.quantile(0.99) <= 0.01],
    [`p50 ≤ 1 ms at ${rate} msg/s`, a.fixed.latency.quantile(0.5) <= 0.001],
  ];
  process.stdout.write('\n');
  for (const [what, ok] of checks) process.stdout.write(`${ok ? 'PASS' : 'MISS'}  ${what}\n`);
}

await main();
