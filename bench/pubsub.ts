/**
 * Publish→deliver throughput and latency of coder-lite's pubsub backends against the client each one is built on, in
 * one run: coder-lite on PostgreSQL against pg-listen on the same cluster, coder-lite on NATS against the raw NATS
 * client (publish/subscribe with no queue: the ceiling) on the same nats-server.
 *
 *   npm run bench:pubsub                      # starts a throwaway embedded PostgreSQL and a nats-server
 *   CODER_LITE_BENCH_PG_URL=postgres://… CODER_LITE_BENCH_NATS_URL=nats://… npm run bench:pubsub
 *
 * Saturation: a closed loop keeps WINDOW messages in flight for SECONDS: every delivery to the subscriber publishes
 * the next message. Fixed rate: an open loop publishes RATE messages per second on
 * schedule, whatever the replies do. Latency is from the publish call to the subscriber's listener, in this one
 * process.
 *
 * The PostgreSQL pair is set up as each is meant to be used: coder-lite publishes on a dedicated sender connection
 * and listens on another; pg-listen notifies and listens on its one client. At low rates that favours pg-listen (a
 * backend delivers its own notifications at commit, while another backend must be signalled), under load the
 * batching decides. Both NATS contenders publish and subscribe on one connection each.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import { connect as natsConnect } from '@nats-io/transport-node';
import pgListenModule from 'pg-listen';
import { Registry } from 'prom-client';

import { silentLogger } from '../src/daemon/observability/logger.js';
import { LatencyRecorder } from '../src/daemon/observability/quantiles.js';
import { startEmbeddedPostgres } from '../src/daemon/postgres/embedded.js';
import { createDatabase } from '../src/daemon/postgres/pool.js';
import { createNatsPubsub, parseNatsUrls } from '../src/daemon/pubsub/nats.js';
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
  // Send times by id in a ring (NaN: none in flight): cheaper than a Map, whose cost would flatten the contenders'
  // differences. Far more slots than messages in flight.
  const sentAt = new Float64Array(1 << 20).fill(Number.NaN);
  const slot = (id: number) => id & ((1 << 20) - 1);
  const latency = new LatencyRecorder();
  let next = 0;
  let measuring = false;
  let delivered = 0;
  let errors = 0;
  let stop = false;
  // ~100 bytes, unique per message (identical payloads would be folded by PostgreSQL within one transaction).
  const pad = 'x'.repeat(80);
  // Saturation: every delivery (or failed publish) puts the next message in flight, so WINDOW stay in flight.
  const refill = mode === 'saturation';
  const onError = () => {
    errors++;
    if (refill && !stop) publishOne();
  };
  function publishOne(): void {
    const id = next++;
    sentAt[slot(id)] = performance.now();
    c.publish(`${id} ${pad}`).catch(onError);
  }
  c.onMessage((payload) => {
    const id = Number(payload.slice(0, payload.indexOf(' ')));
    const t0 = sentAt[slot(id)]!;
    if (Number.isNaN(t0)) return;
    sentAt[slot(id)] = Number.NaN;
    if (measuring) {
      delivered++;
      latency.record((performance.now() - t0) / 1000);
    }
    if (refill && !stop) publishOne();
  });

  let loop: Promise<void> = Promise.resolve();
  if (refill) {
    for (let i = 0; i < window; i++) publishOne();
  } else {
    loop = (async () => {
      const start = performance.now();
      let sent = 0;
      while (!stop) {
        const due = Math.floor(((performance.now() - start) / 1000) * rate);
        for (; sent < due; sent++) publishOne();
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
  await loop;
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

async function coderLiteNats(url: string): Promise<Contender> {
  const ps = await createNatsPubsub({ target: parseNatsUrls(url), subjectPrefix: 'bench', logger: silentLogger(), latencyIntervalMs: 0 });
  let handler: (p: string) => void = () => undefined;
  await ps.subscribe(channel, (p) => handler(p.toString()));
  return {
    name: 'coder-lite NATS',
    publish: (payload) => ps.publish(channel, payload),
    onMessage: (fn) => {
      handler = fn;
    },
    close: () => ps.close(),
  };
}

async function rawNats(url: string): Promise<Contender> {
  const nc = await natsConnect({ servers: url });
  let handler: (p: string) => void = () => undefined;
  // Node's own UTF-8 codec both ways, as coder-lite uses: the client's TextEncoder/TextDecoder would be slower, and
  // the ceiling should not be.
  nc.subscribe('bench.raw', { callback: (_err, msg) => handler(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength).toString()) });
  await nc.flush();
  return {
    name: 'raw NATS',
    publish: (payload) => {
      nc.publish('bench.raw', Buffer.from(payload));
      return Promise.resolve();
    },
    onMessage: (fn) => {
      handler = fn;
    },
    close: () => nc.close(),
  };
}

/** A throwaway nats-server on a free loopback port. */
async function startNats(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as { port: number }).port;
      probe.close(() => resolve(p));
    });
  });
  const child = spawn(process.env.CODER_LITE_BENCH_NATS_SERVER ?? '/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const url = `nats://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode})`);
    const up = await natsConnect({ servers: url }).then(
      (nc) => nc.close().then(() => true),
      () => false,
    );
    if (up) break;
    await sleep(20);
  }
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

const ms = (s: number) => (s * 1000).toFixed(2);
const num = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const teardowns: Array<() => Promise<void>> = [];
  let url = process.env.CODER_LITE_BENCH_PG_URL;
  if (!url) {
    // As root, postgres runs as the postgres user: the mkdtemp folder (0700) must be traversable.
    const dir = await mkdtemp(join(tmpdir(), 'coder-lite-bench-'));
    await chmod(dir, 0o755);
    process.stderr.write('starting an embedded PostgreSQL…\n');
    const pg = await startEmbeddedPostgres({ dataDir: dir, logger: silentLogger(), initdbFlags: ['--no-sync'] });
    url = pg.url;
    teardowns.push(async () => {
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    });
  }
  let natsUrl = process.env.CODER_LITE_BENCH_NATS_URL;
  if (!natsUrl) {
    process.stderr.write('starting a nats-server…\n');
    const nats = await startNats();
    natsUrl = nats.url;
    teardowns.push(() => nats.stop());
  }

  const contenders: Array<() => Promise<Contender>> = [() => coderLite(url), () => pgListen(url), () => coderLiteNats(natsUrl), () => rawNats(natsUrl)];
  const results: Record<string, { sat: Figures; fixed: Figures }> = {};
  try {
    for (const make of contenders) {
      const c = await make();
      process.stderr.write(`${c.name}: saturation (${window} in flight, ${seconds} s)…\n`);
      const sat = await drive(c, 'saturation');
      if (c.extra) process.stderr.write(`  ${await c.extra()}\n`);
      process.stderr.write(`${c.name}: ${rate} msg/s (${seconds} s)…\n`);
      const fixed = await drive(c, 'fixed');
      if (c.extra) process.stderr.write(`  ${await c.extra()}\n`);
      await c.close();
      results[c.name] = { sat, fixed };
    }
  } finally {
    for (const t of teardowns.reverse()) await t();
  }

  const names = ['coder-lite', 'pg-listen', 'coder-lite NATS', 'raw NATS'];
  const [a, b, n, r] = names.map((name) => results[name]!) as [typeof results[string], typeof results[string], typeof results[string], typeof results[string]];
  const q = (f: Figures, p: number) => ms(f.latency.quantile(p));
  const row = (label: string, pick: (x: { sat: Figures; fixed: Figures }) => string): string[] => [label, ...[a, b, n, r].map(pick)];
  const rows: string[][] = [
    ['', ...names],
    row('saturation: delivered msg/s', (x) => num(x.sat.perSecond)),
    row('saturation: p50 latency ms', (x) => q(x.sat, 0.5)),
    row('saturation: p99 latency ms', (x) => q(x.sat, 0.99)),
    row(`${rate} msg/s: delivered msg/s`, (x) => num(x.fixed.perSecond)),
    row(`${rate} msg/s: p50 latency ms`, (x) => q(x.fixed, 0.5)),
    row(`${rate} msg/s: p99 latency ms`, (x) => q(x.fixed, 0.99)),
    row('publish errors', (x) => String(x.sat.errors + x.fixed.errors)),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((rw) => rw[i]!.length)));
  for (const rw of rows) process.stdout.write(`${rw.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')}\n`);

  const ratio = (x: number, y: number) => `${(x / y).toFixed(2)}×`;
  const checks: Array<[string, boolean]> = [
    [`PostgreSQL: ≥ 10× pg-listen at saturation (${ratio(a.sat.perSecond, b.sat.perSecond)})`, a.sat.perSecond >= 10 * b.sat.perSecond],
    ['PostgreSQL: p99 ≤ 10 ms at saturation', a.sat.latency.quantile(0.99) <= 0.01],
    [`PostgreSQL: p50 ≤ 1 ms at ${rate} msg/s`, a.fixed.latency.quantile(0.5) <= 0.001],
    [`NATS: ≥ 1.5× coder-lite on PostgreSQL at saturation (${ratio(n.sat.perSecond, a.sat.perSecond)})`, n.sat.perSecond >= 1.5 * a.sat.perSecond],
    [`NATS: ≥ 70% of the raw client at saturation (${((100 * n.sat.perSecond) / r.sat.perSecond).toFixed(0)}%)`, n.sat.perSecond >= 0.7 * r.sat.perSecond],
    ['NATS: p99 ≤ 5 ms at saturation', n.sat.latency.quantile(0.99) <= 0.005],
  ];
  process.stdout.write('\n');
  for (const [what, ok] of checks) process.stdout.write(`${ok ? 'PASS' : 'MISS'}  ${what}\n`);
}

await main();
