import { describe, expect, it } from 'vitest';

import { inProcessProbe, remoteProbe } from '../../src/scaletest/probe.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';

describe('daemon probes', async () => {
  const daemon = await startTestDaemon({ postgresPoolMax: 3 });
  const { token } = await createTestUser(daemon);
  const me = () => fetch(`${daemon.url}/api/v2/users/me`, { headers: { 'coder-session-token': token } }).then((r) => r.text());
  // A query per request: the key cache would answer /users/me without one.
  const models = () => fetch(`${daemon.url}/api/v2/chats/models`, { headers: { 'coder-session-token': token } }).then((r) => r.text());

  it('count the same queries by name in process and from /metrics', async () => {
    const local = inProcessProbe(daemon);
    const remote = remoteProbe(daemon.url);
    const [l0, r0] = await Promise.all([local.figures(), remote.figures()]);
    await Promise.all(Array.from({ length: 25 }, models));
    const [l1, r1] = await Promise.all([local.figures(), remote.figures()]);
    const query = Object.keys(l1.queries).find((q) => (l1.queries[q] ?? 0) - (l0.queries[q] ?? 0) === 25);
    expect(query).toBeDefined();
    expect((r1.queries[query!] ?? 0) - (r0.queries[query!] ?? 0)).toBe(25);
    expect(l1.acquires - l0.acquires).toBeGreaterThanOrEqual(25);
    // The histogram's count is the acquisitions: both sources agree on how many happened in between.
    expect(r1.acquires - r0.acquires).toBe(l1.acquires - l0.acquires);
    expect(l1.pool).toMatchObject({ poolMax: 3 });
    expect(l1.pool!.acquireWait.count).toBe(l1.acquires);
    expect(r1.acquireWaitBuckets!.at(-1)![0]).toBe(Infinity);
  });

  it('sample the pool: open connections and waiting acquisitions', async () => {
    await me();
    for (const probe of [inProcessProbe(daemon), remoteProbe(daemon.url)]) {
      const s = await probe.sample();
      expect(s.total).toBeGreaterThanOrEqual(1);
      expect(s.total).toBeLessThanOrEqual(3);
      expect(s.waiting).toBe(0);
    }
  });

  it('report a daemon that does not answer /metrics', async () => {
    await expect(remoteProbe('http://127.0.0.1:9', { timeoutMs: 2000 }).sample()).rejects.toThrow();
  });
});
