import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import { describe, expect, inject, it, onTestFinished } from 'vitest';

import { parseNatsUrls } from '../../src/daemon/pubsub/nats.js';
import { getChatByID } from '../../src/daemon/store/chats.js';
import { getChatMessagesAfter } from '../../src/daemon/store/messages.js';
import { chatApi, openStream } from '../helpers/chatClient.js';
import { runScript } from '../helpers/cli.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase } from '../helpers/db.js';
import { metricValue } from '../helpers/metrics.js';
import { startNatsServer } from '../helpers/nats.js';

// This file's daemons share the run's nats-server with other files: they keep to a subject prefix of their own.
const nats = { target: parseNatsUrls(inject('natsUrl')), subjectPrefix: `test_${randomBytes(4).toString('hex')}` };

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

  it('exports the same set under coder_nats_pubsub_* on NATS, with the probe and the watchdog running over it', async () => {
    const daemon = await startTestDaemon({ pubsub: 'nats', nats });
    const scrape = async () => (await fetch(`${daemon.url}/metrics`)).text();
    await expect.poll(async () => /coder_nats_pubsub_receive_latency_seconds_count (\d+)/.exec(await scrape())?.[1]).toMatch(/^[1-9]/);
    const text = await scrape();
    for (const name of coderNames) expect(text).toContain(`# TYPE ${name.replace('coder_pubsub_', 'coder_nats_pubsub_')} `);
    expect(text).not.toContain('# TYPE coder_pubsub_');
    expect(text).toMatch(/^coder_nats_pubsub_connected 1$/m);
    // The watchdog's heartbeat on pubsub_watchdog is among the subscriptions.
    expect(text).toMatch(/^coder_nats_pubsub_current_events ([2-9]|[1-9]\d+)$/m);
  });

  it('runs two replicas on one PostgreSQL and one NATS: a turn on A streams to a client of B, an interrupt on B stops it', async () => {
    const { url } = await createTestDatabase();
    const a = await startTestDaemon({ postgresUrl: url, pubsub: 'nats', nats, chat: { fakeTokens: 200, fakeTokenDelayMs: 25 } });
    // B serves the API only, so the turn can only run on A.
    const b = await startTestDaemon({ postgresUrl: url, pubsub: 'nats', nats, chat: { fakeTokens: 200, fakeTokenDelayMs: 25, maxConcurrentTurns: 0 } });
    const user = await createTestUser(a);
    const api = chatApi(b.url, user.token);
    const chat = await api.createChat('across replicas over NATS');
    const s = await openStream(b.url, user.token, chat.id);
    await s.waitFor((e) => e.type === 'status' && e.status === 'running');
    expect(a.chats.worker.runningTurns()).toBe(1);
    expect((await api.interrupt(chat.id)).status).toBe(200);
    await expect.poll(() => a.chats.worker.runningTurns()).toBe(0);
    await s.waitFor((e) => e.type === 'status' && e.status === 'waiting');
    await api.send(chat.id, 'again');
    await s.waitFor((e) => e.type === 'message' && e.message.role === 'assistant', 20_000);
    await s.waitFor((e, all) => e.type === 'status' && e.status === 'waiting' && all.indexOf(e) > all.findIndex((x) => x.type === 'message' && x.message.role === 'assistant'));
    expect((await getChatByID(a.db, chat.id))!.status).toBe('waiting');
    s.close();
  });

  it('rides out a nats-server restart mid-turn: streams on the other replica resync and equal the database', async () => {
    const server = await startNatsServer();
    onTestFinished(() => server.dispose());
    const own = { target: parseNatsUrls(server.url), subjectPrefix: nats.subjectPrefix };
    const { url } = await createTestDatabase();
    const a = await startTestDaemon({ postgresUrl: url, pubsub: 'nats', nats: own, chat: { fakeTokens: 80, fakeTokenDelayMs: 25 } });
    const b = await startTestDaemon({ postgresUrl: url, pubsub: 'nats', nats: own, chat: { fakeTokens: 80, fakeTokenDelayMs: 25, maxConcurrentTurns: 0 } });
    const user = await createTestUser(a);
    const api = chatApi(b.url, user.token);
    const chats = await Promise.all(Array.from({ length: 10 }, (_, i) => api.createChat(`through a NATS restart ${i}`)));
    const streams = await Promise.all(chats.map((c) => openStream(b.url, user.token, c.id)));
    await Promise.all(streams.map((s) => s.waitFor((e) => e.type === 'status' && e.status === 'running')));
    await server.stop();
    await server.start();
    const assistantMessages = (s: (typeof streams)[number]) => s.events().filter((e) => e.type === 'message' && e.message.role === 'assistant').length;
    const finished = (s: (typeof streams)[number], turns: number) =>
      expect.poll(() => assistantMessages(s) >= turns && s.statuses().at(-1) === 'waiting', { timeout: 30_000 }).toBe(true);
    // Whatever the outage took (the end of a turn, or nothing), the drop signal makes B re-read.
    await Promise.all(streams.map((s) => finished(s, 1)));
    // And notices flow again: a second turn streams as usual.
    for (const c of chats) expect((await api.send(c.id, 'again')).status).toBeLessThan(300);
    await Promise.all(streams.map((s) => finished(s, 2)));
    for (const d of [a, b]) expect(await metricValue(d.registry, 'coder_nats_pubsub_disconnections_total')).toBe(1);
    for (const [i, c] of chats.entries()) {
      const persisted = (await getChatMessagesAfter(a.db, c.id, 0, 100)).map((m) => m.id);
      const streamed = streams[i]!.events().flatMap((e) => (e.type === 'message' ? [e.message.id] : []));
      expect(streamed).toEqual(persisted);
      streams[i]!.close();
    }
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
    const { code, stderr, output } = await runScript(script, { PG_URL: url });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(output).toEqual({ got: 2, same: true });
  });
});
