import { lookup } from 'node:dns/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { hostname } from 'node:os';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { getWebpushSubscriptionsByUserID, upsertWebpushSubscription } from '../../src/daemon/store/webpush.js';
import { newSinkSubscription } from '../../src/scaletest/pushSink.js';
import { chatApi, openStream } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';

/** A listener that counts the connections it gets and drops each at once, so a dial that happens fails fast. */
async function countingListener(host: string): Promise<{ server: Server; port: number; connections: () => number }> {
  let n = 0;
  const server = createServer((socket) => {
    n++;
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => n };
}

const v4 = await countingListener('127.0.0.1');
// A machine without IPv6 loopback still runs every IPv4 form.
const v6 = await countingListener('::1').catch(() => undefined);
// A name that is not "localhost" yet resolves to this machine (through /etc/hosts): only the dial-time check sees it.
const name = hostname();
const resolved = await lookup(name);
const byName = await countingListener(resolved.address);
afterAll(async () => {
  for (const l of [v4, v6, byName]) await new Promise((resolve) => l?.server.close(resolve));
});
const connections = () => v4.connections() + (v6?.connections() ?? 0) + byName.connections();

/** Every refused form of issue #16, literal and resolved, each aimed at one of the listeners above. */
const forms = [
  `https://127.0.0.1:${v4.port}`,
  `https://2130706433:${v4.port}`,
  `https://0x7f.1:${v4.port}`,
  `http://127.0.0.1:${v4.port}`,
  `https://[::ffff:127.0.0.1]:${v4.port}`,
  `https://[::ffff:0:127.0.0.1]:${v4.port}`,
  `https://[::127.0.0.1]:${v4.port}`,
  `https://[2002:7f00:1::]:${v4.port}`,
  `https://[64:ff9b:1::7f00:1]:${v4.port}`,
  `https://[100::1]:${v4.port}`,
  `https://[fec0::1]:${v4.port}`,
  ...(v6 ? [`https://[::1]:${v6.port}`, `http://[::1]:${v6.port}`] : []),
  `https://${name}:${byName.port}`,
];
const endpoint = (origin: string) => newSinkSubscription(origin);

const daemon = await startTestDaemon({ chat: { fakeTokens: 2, fakeTokenDelayMs: 1 }, webpush: {} });

describe('the address policy without the dev flag', () => {
  beforeAll(() => {
    // The resolved case means something only where the name resolves to an address the policy refuses.
    expect(resolved.address).toMatch(/^(127\.|10\.|172\.(1[6-9]|2\d|3[01])\.|192\.168\.|::1$|f[cd])/);
  });

  it('refuses every form at subscribe time and never dials it', async () => {
    const { token } = await createTestUser(daemon);
    const api = chatApi(daemon.url, token);
    for (const origin of forms) {
      const res = await api.call('POST', '/api/v2/users/me/webpush/subscription', endpoint(origin));
      expect(res.status, origin).toBe(400);
    }
    expect(connections()).toBe(0);
  });

  /** Rows as another replica with the dev flag, or someone with database access, would have stored them. */
  async function userWithStoredRows() {
    const u = await createTestUser(daemon);
    for (const origin of forms) {
      const s = endpoint(origin);
      await upsertWebpushSubscription(daemon.db, u.user.id, s.endpoint, s.auth_key, s.p256dh_key);
    }
    return u;
  }

  it('never dials a stored row that fails it, on a test push and after a turn; reports and deletes the row', async () => {
    const { user, token } = await userWithStoredRows();
    const refusedBefore = await refusedCount();
    const api = chatApi(daemon.url, token);
    // The test push awaits every send: when it answers, each row was decided.
    expect((await api.call('POST', '/api/v2/users/me/webpush/test')).status).toBe(204);
    expect(connections()).toBe(0);
    expect(await getWebpushSubscriptionsByUserID(daemon.db, user.id)).toEqual([]);
    expect((await refusedCount()) - refusedBefore).toBe(forms.length);

    // The push after a turn refuses them just the same.
    const other = await userWithStoredRows();
    const chat = await chatApi(daemon.url, other.token).createChat('a turn whose push must not be dialled');
    const stream = await openStream(daemon.url, other.token, chat.id);
    await stream.waitFor((e) => e.type === 'status' && e.status === 'waiting');
    stream.close();
    await daemon.webpush!.turnPush.drain();
    expect(connections()).toBe(0);
    expect(await getWebpushSubscriptionsByUserID(daemon.db, other.user.id)).toEqual([]);
    expect((await refusedCount()) - refusedBefore).toBe(2 * forms.length);
  });
});

async function refusedCount(): Promise<number> {
  const text = await (await fetch(`${daemon.url}/metrics`)).text();
  return Number(/coderlite_webpush_dispatch_total\{result="refused"\} (\d+)/.exec(text)?.[1] ?? 0);
}
