import { expect, it } from 'vitest';

import { createDatabase } from '../../src/daemon/postgres/pool.js';
import { getChatMessagesAfter } from '../../src/daemon/store/messages.js';
import { createUserWithToken } from '../../src/daemon/users/service.js';
import { startServerProcess } from '../helpers/cli.js';
import { startStoppablePostgres } from '../helpers/pg15.js';
import { followStream, newTally, retrying } from '../helpers/resilientClient.js';

const chats = 16;
const turns = 6;

// Two replicas on one PostgreSQL, every chat watched on both, turns running while PostgreSQL restarts (fast
// shutdown: every backend is terminated, new connections refused until it is back).
it('two replicas ride out a PostgreSQL restart under load: no exit, no 500, no duplicated turn, streams equal to the database', async () => {
  const pg = await startStoppablePostgres();
  const args = ['--postgres-url', pg.url, '--fake-tokens', '25', '--fake-token-delay', '20ms', '--no-webpush'];
  const [a, b] = await Promise.all([startServerProcess(args), startServerProcess(args)]);
  const replicas = [a!, b!];
  const db = createDatabase({ connectionString: pg.url, max: 2 });
  const { token } = await createUserWithToken(db, 'chaos', undefined);
  const tally = newTally();
  try {
    const ids: string[] = [];
    for (let i = 0; i < chats; i++) {
      const res = await retrying(tally, replicas[i % 2]!.url, token, 'POST', '/api/experimental/chats', { message: `chat ${i}` });
      expect(res.status).toBe(201);
      ids.push(res.body.id as string);
    }
    const streams = ids.flatMap((id) => replicas.map((r) => followStream(r.url, token, id)));

    let restarted = false;
    let turnsDone = 0;
    const client = async (id: string, i: number) => {
      const base = () => replicas[i % 2]!.url;
      for (let t = 0; t < turns; t++) {
        // Waits for the turn to end, through the outage.
        for (;;) {
          const res = await retrying(tally, base(), token, 'GET', `/api/experimental/chats/${id}`);
          if (res.body.status === 'waiting') break;
          expect(res.body.status, JSON.stringify(res.body)).not.toBe('error');
          await new Promise((r) => setTimeout(r, 50));
        }
        if (t === turns - 1) break;
        const sent = await retrying(tally, base(), token, 'POST', `/api/experimental/chats/${id}/messages`, { content: `turn ${t + 1}` });
        expect(sent.status, JSON.stringify(sent.body)).toBe(201);
        turnsDone++;
      }
    };
    const clients = Promise.all(ids.map(client));
    // Restart once a third of the turns are under way, so sends, turns and stream reads are in flight.
    await expect.poll(() => turnsDone >= (chats * (turns - 1)) / 3, { timeout: 60_000, interval: 20 }).toBe(true);
    await pg.restart();
    restarted = true;
    await clients;
    expect(restarted).toBe(true);

    for (const r of replicas) expect(r.child.exitCode, r.stderr().slice(-2000)).toBeNull();
    expect(tally.serverErrors).toEqual([]);
    expect(tally.unavailable + tally.connectionErrors, 'the restart was felt by the clients').toBeGreaterThan(0);

    for (const id of ids) {
      const messages = await getChatMessagesAfter(db, id, 0, 1000);
      // One user message and one reply per turn: a retried send never made a second turn.
      expect(messages.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(Array.from({ length: turns }, (_, t) => (t === 0 ? `chat ${ids.indexOf(id)}` : `turn ${t}`)));
      expect(messages.filter((m) => m.role === 'assistant')).toHaveLength(turns);
    }
    // Every stream, on either replica, ends equal to the database: nothing missing, doubled or out of order.
    await expect
      .poll(async () => {
        const mismatched = [];
        for (const [k, s] of streams.entries()) {
          const dbIds = (await getChatMessagesAfter(db, ids[Math.floor(k / 2)]!, 0, 1000)).map((m) => m.id);
          if (JSON.stringify(s.state.ids) !== JSON.stringify(dbIds) || s.state.status !== 'waiting') mismatched.push(k);
        }
        return mismatched;
      }, { timeout: 30_000, interval: 200 })
      .toEqual([]);
    for (const s of streams) expect(s.state.disorder).toEqual([]);
    for (const s of streams) s.stop();
  } finally {
    for (const r of replicas) r.child.kill('SIGKILL');
    await db.close();
  }
}, 180_000);
