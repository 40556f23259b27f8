/**
 * Chat streams under clients that stop reading, against the built daemon (`coder-lite server`, its own process, so
 * its RSS is its own), in one run:
 * 1. a normal client's turn latency (POST the message → the assistant message on its stream), p50 and max, while
 *    another chat floods with back-to-back turns (fake provider, many tokens, 0 ms delay) watched by 0, 4 and 12
 *    clients that have stopped reading — measured until every paused client has been cut, so the cuts fall inside;
 * 2. the daemon's RSS growth per paused subscriber opening a chat with a 50 MiB history from the start.
 *
 *   npm run bench:streams
 *   BENCH_TOKENS=2000 BENCH_TURNS=150 BENCH_HISTORY_MIB=50 BENCH_RSS_CLIENTS=8 npm run bench:streams
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { Agent, fetch } from 'undici';
import WebSocket from 'ws';

import type { StreamEvent } from '../src/daemon/chat/events.js';
import { createDatabase } from '../src/daemon/postgres/pool.js';
import { insertChatMessage } from '../src/daemon/store/messages.js';

const tokens = Number(process.env.BENCH_TOKENS ?? 2000);
const turns = Number(process.env.BENCH_TURNS ?? 150);
const historyMiB = Number(process.env.BENCH_HISTORY_MIB ?? 50);
const rssClients = Number(process.env.BENCH_RSS_CLIENTS ?? 8);
const pausedCounts = [0, 4, 12];
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const env = { ...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: 'true', NO_COLOR: '1' };

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${args.join(' ')} exited ${code}: ${err}`))));
  });
}

const dataDir = mkdtempSync(join(tmpdir(), 'coder-lite-bench-streams-'));
// The embedded cluster runs as the postgres user, which must traverse the data dir's parents.
chmodSync(dataDir, 0o755);
const server = spawn(process.execPath, [bin, 'server', '--http-address', '127.0.0.1:0', '--data-dir', dataDir, '--fake-tokens', String(tokens), '--fake-token-delay', '0ms', '--no-webpush'], {
  env,
  stdio: ['ignore', 'ignore', 'pipe'],
});
const baseUrl = await new Promise<string>((resolve, reject) => {
  let stderr = '';
  const onData = (d: Buffer) => {
    stderr += d.toString();
    const m = /"url":"(http:\/\/[^"]+)"/.exec(stderr);
    if (!m) return;
    // The daemon's log goes on to the terminal: warnings (a cut client is not one) stay visible.
    server.stderr.off('data', onData);
    server.stderr.pipe(process.stderr);
    resolve(m[1]!);
  };
  server.stderr.on('data', onData);
  server.on('exit', (code) => reject(new Error(`server exited (${code}): ${stderr}`)));
});
// Idle connections are let go well before the daemon's keep-alive timeout, so a request never races its close.
const dispatcher = new Agent({ keepAliveTimeout: 1000 });
const rssMiB = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))![1]) / 1024;

try {
  const { token } = JSON.parse(await run(['users', 'create', 'bench', '--data-dir', dataDir, '--json'])) as { token: string };
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${baseUrl}${path}`, { method: 'POST', headers, body: JSON.stringify(body), dispatcher });
    return { status: res.status, body: (await res.json()) as { id: string; message?: { id: number } } };
  };
  const metric = async (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await (await fetch(`${baseUrl}/metrics`, { dispatcher })).text())?.[1] ?? 0);
  const stream = (chatId: string, onEvents?: (events: StreamEvent[]) => void, paused = false) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/experimental/chats/${chatId}/stream`, { headers, perMessageDeflate: false });
      ws.on('open', () => {
        // A client that stops reading: its kernel buffers fill, then the daemon's bound is reached.
        if (paused) (ws as unknown as { _socket: Socket })._socket.pause();
        resolve(ws);
      });
      ws.on('error', paused ? () => undefined : reject);
      if (onEvents) ws.on('message', (d: Buffer) => onEvents(JSON.parse(d.toString()) as StreamEvent[]));
    });
  const waitUntil = async (cond: () => boolean | Promise<boolean>, what: string, ms = 120_000) => {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(5);
    }
  };

  console.log(`streams bench: coder-lite server, fake provider ${tokens} tokens at 0 ms; ${new Date().toISOString()}`);
  console.log('\nturn latency of a normal client while another chat floods, with paused clients on the flooded chat');
  console.log('paused  turns  p50 ms  max ms  paused clients cut');
  for (const paused of pausedCounts) {
    const normal = (await post('/api/experimental/chats', { message: 'normal' })).body.id;
    const flood = (await post('/api/experimental/chats', { message: 'flood' })).body.id;
    let newestAssistant = 0;
    const normalWs = await stream(normal, (events) => {
      for (const e of events) if (e.type === 'message' && e.message.role === 'assistant') newestAssistant = e.message.id;
    });
    await waitUntil(() => newestAssistant > 0, 'the first normal turn');
    const pausedWs = await Promise.all(Array.from({ length: paused }, () => stream(flood, undefined, true)));
    const cutBefore = await metric('coderlite_http_stream_clients_cut_total');
    // Back-to-back turns on the flooded chat: its queue is kept full.
    let flooding = true;
    const floodLoop = (async () => {
      while (flooding) if ((await post(`/api/experimental/chats/${flood}/messages`, { content: 'more' })).status === 409) await sleep(10);
    })();
    await sleep(200);

    const latencies: number[] = [];
    try {
      for (let i = 0; ; i++) {
        const t0 = performance.now();
        const sent = await post(`/api/experimental/chats/${normal}/messages`, { content: `turn ${i}` });
        const userId = sent.body.message!.id;
        await waitUntil(() => newestAssistant > userId, `normal turn ${i}`);
        latencies.push(performance.now() - t0);
        // At least `turns` turns in every row, and on until every paused client has been cut, so the cuts fall inside.
        if (latencies.length < turns) continue;
        const cut = (await metric('coderlite_http_stream_clients_cut_total')) - cutBefore;
        if (cut >= paused) break;
        if (latencies.length >= 10 * turns) throw new Error(`only ${cut} of ${paused} paused clients were cut in ${latencies.length} turns`);
      }
    } finally {
      flooding = false;
      await floodLoop;
    }
    await fetch(`${baseUrl}/api/experimental/chats/${flood}/interrupt`, { method: 'POST', headers: { authorization: headers.authorization }, dispatcher });
    const cut = (await metric('coderlite_http_stream_clients_cut_total')) - cutBefore;
    latencies.sort((a, b) => a - b);
    const p50 = latencies[Math.floor(latencies.length / 2)]!;
    console.log(`${String(paused).padEnd(8)}${String(latencies.length).padEnd(7)}${p50.toFixed(1).padEnd(8)}${latencies.at(-1)!.toFixed(1).padEnd(8)}${cut}`);
    normalWs.close();
    for (const ws of pausedWs) ws.terminate();
  }

  // A 50 MiB history, written straight to the database the daemon uses; a small one to warm up on.
  const history = (await post('/api/experimental/chats', { message: 'history' })).body.id;
  const warmup = (await post('/api/experimental/chats', { message: 'warm-up' })).body.id;
  const pgUrl = await run(['server', 'postgres-builtin-url', '--data-dir', dataDir]);
  const db = createDatabase({ connectionString: pgUrl, max: 4 });
  const piece = 'x'.repeat(100 * 1024);
  const messages = Math.ceil((historyMiB * 1024 * 1024) / piece.length);
  for (let i = 0; i < messages; i++) await insertChatMessage(db, history, 'assistant', `${i} ${piece}`);
  for (let i = 0; i < 20; i++) await insertChatMessage(db, warmup, 'assistant', `${i} ${piece}`);
  await db.close();

  // A paused client and a reading one on the small history first, so what a first snapshot warms up (code, pools,
  // buffers) is in the baseline without 50 MiB of garbage in it.
  let received = 0;
  const warmPaused = await stream(warmup, undefined, true);
  const reader = await stream(warmup, (events) => (received += events.filter((e) => e.type === 'message').length));
  await waitUntil(() => received >= 22, 'the reading client to get the small history');
  reader.close();
  warmPaused.terminate();
  await sleep(3000);
  const before = rssMiB();
  const pausedWs = await Promise.all(Array.from({ length: rssClients }, () => stream(history, undefined, true)));
  // The daemon sends pages until each socket stops draining; then it holds about one page per subscriber.
  await sleep(5000);
  const after = rssMiB();
  console.log(`\nRSS growth per paused subscriber on a ${historyMiB} MiB history (${messages} messages of 100 KiB), ${rssClients} subscribers:`);
  console.log(`  ${((after - before) / rssClients).toFixed(1)} MiB (daemon RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB)`);
  for (const ws of pausedWs) ws.terminate();
} finally {
  await dispatcher.close();
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  rmSync(dataDir, { recursive: true, force: true });
}
