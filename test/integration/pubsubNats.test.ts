import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { connect } from '@nats-io/transport-node';
import { Registry } from 'prom-client';
import { describe, expect, inject, it, onTestFinished } from 'vitest';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import { channelSubject, createNatsPubsub, NatsDisconnectedError, parseNatsUrls, type NatsPubsubOptions } from '../../src/daemon/pubsub/nats.js';
import { ErrDroppedMessages } from '../../src/daemon/pubsub/pubsub.js';
import { runScript } from '../helpers/cli.js';
import { metricValue } from '../helpers/metrics.js';
import { startNatsServer } from '../helpers/nats.js';
import { expectOrderedAroundDrop } from '../helpers/pubsubOrder.js';

const logger = silentLogger();
const prefix = `test_${randomBytes(4).toString('hex')}`;

async function open(url: string, overrides: Partial<NatsPubsubOptions> = {}) {
  const registry = new Registry();
  const ps = await createNatsPubsub({ target: parseNatsUrls(url), subjectPrefix: prefix, logger, registry, latencyIntervalMs: 0, reconnectTimeWaitMs: 50, ...overrides });
  return { ps, registry, metric: (name: string, labels?: Record<string, string>) => metricValue(registry, name, labels) };
}

describe('NATS URLs and subjects', () => {
  it('takes credentials out of the URLs, so the server list can be logged', () => {
    expect(parseNatsUrls('nats://alice:s%40cret@n1:4222, nats://n2:4222')).toEqual({ servers: ['nats://n1:4222', 'nats://n2:4222'], user: 'alice', pass: 's@cret' });
    expect(parseNatsUrls('tls://tok3n@n1:4222')).toEqual({ servers: ['tls://n1:4222'], token: 'tok3n' });
    expect(parseNatsUrls('nats://n1:4222', { token: 'flag' })).toMatchObject({ token: 'flag' });
    expect(() => parseNatsUrls('http://n1:4222')).toThrow(/nats:\/\/ or tls:\/\//);
    expect(() => parseNatsUrls('nats://user:secret@')).toThrow(/not a URL/);
    expect(() => parseNatsUrls('nats://user:secret@')).not.toThrow(/secret/);
    expect(() => parseNatsUrls(' , ')).toThrow(/at least one/);
  });

  it('maps every channel to one token under the prefix, escaping what NATS gives meaning to', () => {
    expect(channelSubject('coderlite', 'chat:stream:42')).toBe('coderlite.chat:stream:42');
    expect(channelSubject('coderlite', 'a.b*c>d e\tf%')).toBe('coderlite.a%2Eb%2Ac%3Ed%20e%09f%25');
    expect(channelSubject('coderlite', 'é')).toBe('coderlite.%C3%A9');
    // Injective: the escape character is escaped itself.
    expect(channelSubject('p', 'a%2Eb')).not.toBe(channelSubject('p', 'a.b'));
  });
});

describe('NATS pubsub', () => {
  const url = inject('natsUrl');

  it('uses one NATS subscription per channel for all local listeners, and its subjects are prefixed', async () => {
    const { ps, metric } = await open(url);
    // A raw client sees what goes over the wire.
    const raw = await connect({ servers: url });
    const seen: string[] = [];
    raw.subscribe(`${prefix}.>`, { callback: (_e, m) => void seen.push(m.subject) });
    await raw.flush();
    const got: string[] = [];
    const cancels = await Promise.all([1, 2, 3].map((i) => ps.subscribe('shared.ch', (p) => void got.push(`${i}:${p.toString()}`))));
    expect(await metric('coder_nats_pubsub_current_events')).toBe(1);
    expect(await metric('coder_nats_pubsub_current_subscribers')).toBe(3);
    await ps.publish('shared.ch', 'x');
    await expect.poll(() => got.sort()).toEqual(['1:x', '2:x', '3:x']);
    expect(seen).toEqual([`${prefix}.shared%2Ech`]);
    // Counted once: one message arrived for three listeners.
    expect(await metric('coder_nats_pubsub_messages_total', { size: 'normal' })).toBe(1);
    for (const c of cancels) await c();
    expect(await metric('coder_nats_pubsub_current_events')).toBe(0);
    expect(await metric('coder_nats_pubsub_current_subscribers')).toBe(0);
    await raw.close();
    await ps.close();
  });

  it('counts publishes, subscribes, messages and bytes under coder_nats_pubsub_*, and the probe fills latency', async () => {
    const { ps, metric } = await open(url, { latencyIntervalMs: 20 });
    const got: number[] = [];
    await ps.subscribe('metrics', (p) => void got.push(p.length));
    await expect(ps.subscribe('x'.repeat(64), () => undefined)).rejects.toThrow();
    await ps.publish('metrics', 'hello');
    await ps.publish('metrics', 'z'.repeat(7600));
    await expect(ps.publish('metrics', 'a\0')).rejects.toThrow();
    await expect.poll(() => got).toEqual([5, 7600]);
    await expect.poll(() => metric('coder_nats_pubsub_receive_latency_seconds')).toBeGreaterThanOrEqual(2);
    // The probe publishes and subscribes too; what it adds is on its own channel, so compare with it.
    expect(await metric('coder_nats_pubsub_publishes_total', { success: 'false' })).toBe(1);
    expect(await metric('coder_nats_pubsub_subscribes_total', { success: 'false' })).toBe(1);
    expect(await metric('coder_nats_pubsub_messages_total', { size: 'colossal' })).toBe(1);
    expect(await metric('coder_nats_pubsub_connected')).toBe(1);
    expect(await metric('coder_nats_pubsub_latency_measure_errs_total')).toBe(0);
    await ps.close();
    expect(await metric('coder_nats_pubsub_connected')).toBe(0);
    const published = await metric('coder_nats_pubsub_publishes_total', { success: 'true' });
    expect(await metric('coder_nats_pubsub_published_bytes_total')).toBe(7605 + 36 * (published - 2));
  });

  it('survives a nats-server restart mid-stream: the drop signal, then the messages after it', async () => {
    const server = await startNatsServer();
    onTestFinished(() => server.dispose());
    const sub = await open(server.url);
    const pub = await open(server.url);
    const got: Array<number | Error> = [];
    await sub.ps.subscribeWithErr('stream', (p, err) => void got.push(err ?? Number(p!.toString())));
    let n = 0;
    let refused = 0;
    let streaming = true;
    // Publishes keep coming throughout, on a connection of their own that reconnects too; while it is down they
    // are refused, never silently dropped.
    const stream = (async () => {
      while (streaming) {
        await pub.ps.publish('stream', String(n++)).catch((err: unknown) => {
          expect(err).toBeInstanceOf(NatsDisconnectedError);
          refused++;
        });
        await new Promise((r) => setImmediate(r));
      }
    })();
    await expect.poll(() => got.length).toBeGreaterThan(10);
    await server.stop();
    await expect.poll(() => sub.ps.connected).toBe(false);
    expect(await sub.metric('coder_nats_pubsub_connected')).toBe(0);
    expect(await sub.metric('coder_nats_pubsub_disconnections_total')).toBe(1);
    await server.start();
    await expect.poll(() => sub.ps.connected, { timeout: 10_000 }).toBe(true);
    const dropAt = () => got.findIndex((g) => g instanceof ErrDroppedMessages);
    // Messages after the drop signal: published after the subscriber was back.
    await expect.poll(() => got.length - dropAt(), { timeout: 10_000 }).toBeGreaterThan(10);
    streaming = false;
    await stream;
    // Core NATS is at-most-once: what the outage took is unknown, but nothing is reordered.
    const { before, after } = expectOrderedAroundDrop(got);
    expect(before.at(-1)!).toBeLessThan(after[0]!);
    expect(await sub.metric('coder_nats_pubsub_dropped_signals_total')).toBe(1);
    expect(await sub.metric('coder_nats_pubsub_connected')).toBe(1);
    expect(await pub.metric('coder_nats_pubsub_publishes_total', { success: 'false' })).toBe(refused);
    await sub.ps.close();
    await pub.ps.close();
  });

  it('signals the drop when the server cuts it off as a slow consumer, and delivers again', async () => {
    // The server disconnects a client with more than 64 KiB waiting for it; max_payload may not exceed that.
    const server = await startNatsServer({ config: 'max_pending: 65536\nmax_payload: 16384' });
    onTestFinished(() => server.dispose());
    const { ps, metric } = await open(server.url);
    const got: Array<string | Error> = [];
    await ps.subscribeWithErr('flood', (p, err) => void got.push(err ?? p!.toString()));
    const dir = mkdtempSync(join(tmpdir(), 'coder-lite-slow-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const done = join(dir, 'done');
    // Another process floods the subject (16 MiB, far more than the socket buffers hold) while this one does not read.
    const script = `
      const { connect } = await import(${JSON.stringify(createRequire(import.meta.url).resolve('@nats-io/transport-node'))});
      const nc = await connect({ servers: ${JSON.stringify(server.url)} });
      const payload = new Uint8Array(8192).fill(120);
      for (let i = 0; i < 2048; i++) nc.publish(${JSON.stringify(channelSubject(prefix, 'flood'))}, payload);
      await nc.flush();
      (await import('node:fs')).writeFileSync(${JSON.stringify(done)}, '');
      await nc.close();
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    // The event loop is held until the flood is on the server: this client reads nothing meanwhile.
    const deadline = Date.now() + 20_000;
    while (!existsSync(done) && Date.now() < deadline && child.exitCode === null) {
      // Blocking on purpose (a synchronous wait for the other process's marker file).
    }
    expect(await exited).toBe(0);
    await expect.poll(() => got.some((g) => g instanceof ErrDroppedMessages), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => ps.connected, { timeout: 10_000 }).toBe(true);
    expect(await metric('coder_nats_pubsub_disconnections_total')).toBe(1);
    await ps.publish('flood', 'after');
    await expect.poll(() => got.at(-1)).toBe('after');
    await ps.close();
  });

  it('fails clearly when NATS cannot be reached, naming the server but no credentials', async () => {
    const server = await startNatsServer();
    const dead = `nats://bob:hunter2@127.0.0.1:${server.port}`;
    await server.dispose();
    const err = await createNatsPubsub({ target: parseNatsUrls(dead), logger, latencyIntervalMs: 0 }).then(
      () => new Error('connected'),
      (e: unknown) => e as Error,
    );
    expect(err.message).toBe(`pubsub: cannot connect to NATS at nats://127.0.0.1:${server.port}`);
    expect(err.cause).toBeDefined();
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toContain('hunter2');
  });

  it('leaves nothing that keeps the process alive after close', async () => {
    const src = fileURLToPath(new URL('../../src/daemon/', import.meta.url));
    const script = `
      const { createNatsPubsub, parseNatsUrls } = await import(${JSON.stringify(`${src}pubsub/nats.ts`)});
      const { silentLogger } = await import(${JSON.stringify(`${src}observability/logger.ts`)});
      const ps = await createNatsPubsub({ target: parseNatsUrls(process.env.NATS_URL), subjectPrefix: ${JSON.stringify(prefix)}, logger: silentLogger(), latencyIntervalMs: 10 });
      let got = 0;
      await ps.subscribe('leak', () => void got++);
      await Promise.all([ps.publish('leak', 'a'), ps.publish('leak', 'b')]);
      while (got < 2) await new Promise((r) => setTimeout(r, 5));
      const first = ps.close();
      const same = ps.close() === first;
      await first;
      process.stdout.write(JSON.stringify({ got, same }));
    `;
    const { code, stderr, output } = await runScript(script, { NATS_URL: url });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(output).toEqual({ got: 2, same: true });
  });
});
