/**
 * Two `server` replicas on one external PostgreSQL under ~150 turns/s, every chat watched on both, while PostgreSQL
 * is restarted (`pg_ctl restart -m fast`) or has every backend of the database terminated, several times. Prints what issue #12 asks to be 0: replica exits, chats
 * stuck 30 s after the database returns, 5xx answers (503 counted apart), duplicated turns, stream mismatches.
 *
 *   npm run build && node --import tsx bench/pgRestart.ts [--chats 200] [--restarts 3] [--every 15] [--fault restart|terminate]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

import { createDatabase, namedQuery } from '../src/daemon/postgres/pool.js';
import { getChatMessagesAfter } from '../src/daemon/store/messages.js';
import { createUserWithToken } from '../src/daemon/users/service.js';
import { startServerProcess } from '../test/helpers/cli.js';
import { followStream, newTally, retrying } from '../test/helpers/resilientClient.js';
import { createStoppablePostgres } from '../test/helpers/stoppablePostgres.js';

const { values } = parseArgs({ options: { chats: { type: 'string', default: '200' }, restarts: { type: 'string', default: '3' }, every: { type: 'string', default: '15' }, fault: { type: 'string', default: 'restart' } } });
const chats = Number(values.chats);
const restarts = Number(values.restarts);
const everyMs = Number(values.every) * 1000;

const terminateQ = namedQuery('benchTerminate', 'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
const stuckQ = namedQuery('benchStuck', "SELECT count(*)::int AS n FROM chats WHERE status IN ('running', 'pending') AND updated_at < $1");

const pg = await createStoppablePostgres();
const args = ['--postgres-url', pg.url, '--fake-tokens', '20', '--fake-token-delay', '25ms', '--no-webpush'];
const replicas = await Promise.all([startServerProcess(args), startServerProcess(args)]);
const db = createDatabase({ connectionString: pg.url, max: 4 });
const { token } = await createUserWithToken(db, 'bench', undefined);
const tally = newTally();
let stopping = false;
let turns = 0;
const sent = new Map<string, string[]>();

const ids: string[] = [];
for (let i = 0; i < chats; i++) {
  const res = await retrying(tally, replicas[i % 2]!.url, token, 'POST', '/api/experimental/chats', { message: `c${i}-t0` });
  ids.push(res.body.id as string);
  sent.set(res.body.id as string, [`c${i}-t0`]);
}
const streams = ids.map((id) => replicas.map((r) => followStream(r.url, token, id)));

/** Each chat: wait for `waiting` on its own replica's stream, think ~0.8 s, send the next message. */
async function client(i: number): Promise<void> {
  const id = ids[i]!;
  const mine = streams[i]![i % 2]!.state;
  for (let t = 1; !stopping; t++) {
    while (!(mine.status === 'waiting' && mine.ids.length >= 2 * t)) {
      if (stopping && mine.status === 'waiting') return;
      await sleep(20);
    }
    turns++;
    await sleep(500 + Math.random() * 600);
    if (stopping) return;
    const content = `c${i}-t${t}`;
    const res = await retrying(tally, replicas[i % 2]!.url, token, 'POST', `/api/experimental/chats/${id}/messages`, { content }, 120_000);
    if (res.status !== 201) throw new Error(`send answered ${res.status}: ${JSON.stringify(res.body)}`);
    sent.get(id)!.push(content);
  }
}

const clients = ids.map((_, i) => client(i));
const stuckAfter: number[] = [];
const t0 = Date.now();
for (let r = 0; r < restarts; r++) {
  await sleep(everyMs);
  const before = turns;
  const startedAt = Date.now();
  if (values.fault === 'terminate') await db.query(terminateQ);
  else await pg.restart();
  const back = new Date();
  process.stderr.write(`${values.fault} ${r + 1}: down ${Date.now() - startedAt} ms; ${((before / (Date.now() - t0)) * 1000).toFixed(0)} turns/s so far\n`);
  await sleep(30_000);
  stuckAfter.push((await db.query<{ n: number }>(stuckQ, [back])).rows[0]!.n);
}
const elapsed = (Date.now() - t0) / 1000;
stopping = true;
await Promise.all(clients);

let duplicated = 0;
let missing = 0;
let mismatched = 0;
await sleep(3000);
for (const [k, id] of ids.entries()) {
  const messages = await getChatMessagesAfter(db, id, 0, 10_000);
  const users = messages.filter((m) => m.role === 'user').map((m) => String(m.content));
  duplicated += users.length - new Set(users).size;
  missing += sent.get(id)!.filter((c) => !users.includes(c)).length;
  const dbIds = JSON.stringify(messages.map((m) => m.id));
  for (const s of streams[k]!) if (JSON.stringify(s.state.ids) !== dbIds || s.state.disorder.length > 0) mismatched++;
}
for (const pair of streams) for (const s of pair) s.stop();

const exits = replicas.filter((r) => r.child.exitCode !== null).length;
console.log(
  JSON.stringify(
    {
      chats,
      streams: chats * 2,
      fault: values.fault,
      restarts,
      turns,
      turnsPerSecond: Math.round(turns / elapsed),
      replicaExits: exits,
      chatsStuck30sAfterReturn: stuckAfter,
      answers5xx: tally.serverErrors.length,
      answers503: tally.unavailable,
      connectionErrors: tally.connectionErrors,
      duplicatedTurns: duplicated,
      acknowledgedSendsMissing: missing,
      streamMismatches: mismatched,
    },
    null,
    2,
  ),
);
for (const r of replicas) r.child.kill('SIGTERM');
await Promise.all(replicas.map((r) => r.exited));
await db.close();
await pg.remove();
