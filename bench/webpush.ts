/**
 * Web Push dispatch throughput: coder-lite's dispatcher against web-push's own `sendNotification` — awaited one after
 * another (the plain loop), and with the same parallelism as ours — in one run, to one loopback https push service
 * (self-signed; web-push refuses plain http) that verifies and decrypts every notification. Same payload, same
 * subscriptions. The push service runs in a worker thread, so its decryption does not share a core with the senders.
 *
 *   npm run bench:webpush
 *   BENCH_SENDS=4000 BENCH_CONCURRENCY=32 npm run bench:webpush
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import webpush from 'web-push';

import { silentLogger } from '../src/daemon/observability/logger.js';
import { createMetricsRegistry } from '../src/daemon/observability/metrics.js';
import type { WebpushSubscription } from '../src/daemon/store/webpush.js';
import { declarativePayload, PushDispatcher, type PushMessage } from '../src/daemon/webpush/dispatcher.js';
import { createWebpushMetrics } from '../src/daemon/webpush/metrics.js';
import { VapidTokenCache } from '../src/daemon/webpush/vapid.js';
import { startPushSink, type SinkSubscription } from '../src/scaletest/pushSink.js';

const sends = Number(process.env.BENCH_SENDS ?? 3000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
const subscriptionCount = 100;

type SinkReply = { url: string; subs: SinkSubscription[] } | { received: number; refusals: string[] };

if (!isMainThread) {
  const sink = await startPushSink({ tls: workerData as { key: string; cert: string } });
  const subs = Array.from({ length: subscriptionCount }, () => sink.newSubscription());
  parentPort!.postMessage({ url: sink.url, subs } satisfies SinkReply);
  parentPort!.on('message', (m: string) => {
    if (m === 'stats') parentPort!.postMessage({ received: sink.received(), refusals: sink.refusals() } satisfies SinkReply);
    else void sink.close().then(() => process.exit(0));
  });
} else {
  await main();
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'coder-lite-bench-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  const tls = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  rmSync(dir, { recursive: true });
  // The sink's certificate is self-signed; both senders must accept it.
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

  // Workers do not inherit tsx's loader on Node 20: register it, then load this file.
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); });`;
  const worker = new Worker(boot, { eval: true, workerData: tls });
  const replies: SinkReply[] = [];
  const waiters: Array<(r: SinkReply) => void> = [];
  worker.on('message', (r: SinkReply) => (waiters.shift() ?? ((x: SinkReply) => replies.push(x)))(r));
  const next = () => new Promise<SinkReply>((resolve) => (replies.length > 0 ? resolve(replies.shift()!) : waiters.push(resolve)));
  const { subs } = (await next()) as { url: string; subs: SinkSubscription[] };
  const stats = async () => {
    worker.postMessage('stats');
    return (await next()) as { received: number; refusals: string[] };
  };
  const vapid = webpush.generateVAPIDKeys();
  const subject = 'mailto:bench@example.com';
  const message: PushMessage = {
    title: 'Fix the flaky integration test',
    body: 'The retry loop now waits for the listener to be armed before publishing; all 412 tests pass.',
    navigate: 'https://coder-lite.example.com/chats/5b1f2c9e-0d7a-4f43-9a51-3c2f1e8b7d60',
    icon: 'https://coder-lite.example.com/icon.png',
    tag: '5b1f2c9e-0d7a-4f43-9a51-3c2f1e8b7d60',
    topic: '5b1f2c9e0d7a4f439a513c2f1e8b7d60',
    urgency: 'normal',
  };
  const payload = JSON.stringify(declarativePayload(message));

  async function pool(n: number, width: number, fn: (i: number) => Promise<void>): Promise<number> {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: width }, async () => {
      for (let i = next++; i < n; i = next++) await fn(i);
    }));
    return (performance.now() - t0) / 1000;
  }

  /** `width` 1 is the plain loop (await each send); `concurrency` matches our dispatcher. */
  async function runWebPush(width: number): Promise<number> {
    const before = (await stats()).received;
    const secs = await pool(sends, width, async (i) => {
      const s = subs[i % subs.length]!;
      await webpush.sendNotification({ endpoint: s.endpoint, keys: { auth: s.auth_key, p256dh: s.p256dh_key } }, payload, {
        vapidDetails: { subject, publicKey: vapid.publicKey, privateKey: vapid.privateKey },
        TTL: 48 * 3600,
        urgency: 'normal',
        topic: message.topic,
      });
    });
    const delivered = (await stats()).received - before;
    if (delivered !== sends) throw new Error(`web-push: ${delivered} of ${sends} delivered`);
    return sends / secs;
  }

  async function runCoderLite(): Promise<number> {
    const dispatcher = new PushDispatcher({
      tokens: new VapidTokenCache({ current: vapid, generation: 1 }, subject),
      store: { deleteSubscriptions: async () => undefined, markSucceeded: async () => undefined },
      metrics: createWebpushMetrics(createMetricsRegistry({ defaultMetrics: false })),
      logger: silentLogger(),
      concurrency,
      allowPrivateAddresses: true,
      tls: { rejectUnauthorized: false },
    });
    const rows: WebpushSubscription[] = subs.map((s, i) => ({ id: String(i), userId: 'u', endpoint: s.endpoint, authKey: s.auth_key, p256dhKey: s.p256dh_key, lastSuccessAt: new Date() }));
    const before = (await stats()).received;
    // One dispatch per user-sized batch, as the daemon sends: all of a user's subscriptions at once.
    const batches = sends / subscriptionCount;
    const t0 = performance.now();
    for (let b = 0; b < batches; b++) await dispatcher.send(rows, message);
    const secs = (performance.now() - t0) / 1000;
    await dispatcher.close();
    const delivered = (await stats()).received - before;
    if (delivered !== sends) throw new Error(`coder-lite: ${delivered} of ${sends} delivered`);
    return sends / secs;
  }

  // Warm both up (JIT, TLS session setup) before measuring.
  await runWebPush(concurrency);
  await runCoderLite();
  const theirLoop = await runWebPush(1);
  const theirs = await runWebPush(concurrency);
  const ours = await runCoderLite();
  const { refusals } = await stats();
  if (refusals.length > 0) throw new Error(`the sink refused ${refusals.length} notifications: ${refusals[0]}`);
  worker.postMessage('close');

  const fmt = (n: number) => n.toFixed(0).padStart(8);
  process.stdout.write(
    [
      `Web Push dispatch, ${sends} notifications of ${Buffer.byteLength(payload)} bytes to ${subscriptionCount} subscriptions, ${concurrency} in flight, loopback https push service (verified + decrypted)`,
      `  web-push sendNotification, awaited in a loop        ${fmt(theirLoop)} msg/s   coder-lite is ${(ours / theirLoop).toFixed(1)}x`,
      `  web-push sendNotification, ${String(concurrency).padStart(2)} at once            ${fmt(theirs)} msg/s   coder-lite is ${(ours / theirs).toFixed(1)}x`,
      `  coder-lite dispatcher, ${String(concurrency).padStart(2)} at once                ${fmt(ours)} msg/s`,
      '',
    ].join('\n'),
  );
}
