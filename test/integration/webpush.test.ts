import { afterAll, describe, expect, it } from 'vitest';

import { namedQuery } from '../../src/daemon/postgres/pool.js';
import { deleteStaleWebpushSubscriptions, getWebpushSubscriptionsByUserID } from '../../src/daemon/store/webpush.js';
import { startPushSink } from '../../src/scaletest/pushSink.js';
import { chatApi, openStream } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase } from '../helpers/db.js';

const sink = await startPushSink();
afterAll(() => sink.close());
const daemon = await startTestDaemon({
  chat: { fakeTokens: 3, fakeTokenDelayMs: 1 },
  webpush: { allowInsecureEndpoints: true, subject: 'ops@example.com' },
});

function pushApi(baseUrl: string, token: string) {
  const api = chatApi(baseUrl, token);
  return {
    subscribe: (sub: object, user = 'me') => api.call('POST', `/api/v2/users/${user}/webpush/subscription`, sub),
    unsubscribe: (endpoint: string, user = 'me') => api.call('DELETE', `/api/v2/users/${user}/webpush/subscription`, { endpoint }),
    test: (user = 'me') => api.call('POST', `/api/v2/users/${user}/webpush/test`),
  };
}

const queries = (name: string) => daemon.db.stats().queries[name] ?? 0;

async function finishTurn(baseUrl: string, token: string, message: string): Promise<string> {
  const api = chatApi(baseUrl, token);
  const chat = await api.createChat(message);
  const s = await openStream(baseUrl, token, chat.id);
  await s.waitFor((e) => e.type === 'status' && (e.status === 'waiting' || e.status === 'error'));
  s.close();
  return chat.id;
}

describe('web push', () => {
  it('publishes the VAPID public key in buildinfo', async () => {
    const info = (await (await fetch(`${daemon.url}/api/v2/buildinfo`)).json()) as { webpush_public_key: string };
    expect(Buffer.from(info.webpush_public_key, 'base64url')).toHaveLength(65);
  });

  it('pushes a declarative notification after a turn, with Topic, tag, urgency, TTL and a valid VAPID JWT', async () => {
    const { token } = await createTestUser(daemon);
    const sub = sink.newSubscription();
    expect((await pushApi(daemon.url, token).subscribe(sub)).status).toBe(204);
    const before = sink.messages().length;
    const chatId = await finishTurn(daemon.url, token, 'Summarize the build');
    await expect.poll(() => sink.messages().filter((m) => m.endpoint === sub.endpoint).length).toBe(2);
    const push = sink.messages().slice(before).find((m) => m.endpoint === sub.endpoint)!;
    expect(push.payload).toEqual({
      web_push: 8030,
      notification: {
        title: 'Summarize the build',
        body: 'Fake reply to "Summarize the build".',
        navigate: `${daemon.url}/chats/${chatId}`,
        icon: `${daemon.url}/icon.png`,
        tag: chatId,
      },
    });
    // Decrypted by the loopback push service and shown as Safari would show it, without a service worker.
    expect(push.notification).toMatchObject({ title: 'Summarize the build', navigate: `${daemon.url}/chats/${chatId}`, tag: chatId });
    expect(push.topic).toBe(chatId.replaceAll('-', ''));
    expect(push.topic).toHaveLength(32);
    expect(push.claims.aud).toBe(sink.url);
    expect(push.claims.sub).toBe('mailto:ops@example.com');
    expect(push.claims.exp * 1000).toBeLessThanOrEqual(Date.now() + 24 * 3600_000);
    expect(push.ttl).toBe(48 * 3600);
    expect(push.urgency).toBe('normal');
    expect(sink.refusals()).toEqual([]);
  });

  it('makes no chat or config reads on the push path, and ≤ 1 subscription read per user per TTL over 20 turns', async () => {
    const { token } = await createTestUser(daemon);
    const sub = sink.newSubscription();
    await pushApi(daemon.url, token).subscribe(sub);
    const names = ['getLastChatMessageByRole', 'getEnabledChatProviders', 'getChatModelConfigByID', 'getWebpushSubscriptionsByUserIDs'];
    const before = Object.fromEntries(names.map((n) => [n, queries(n)]));
    const api = chatApi(daemon.url, token);
    const chat = await api.createChat('turn 0');
    const s = await openStream(daemon.url, token, chat.id);
    for (let i = 1; i <= 20; i++) {
      await s.waitFor((e, all) => e.type === 'status' && e.status === 'waiting' && all.filter((x) => x.type === 'message' && x.message.role === 'assistant').length === i);
      if (i < 20) await api.send(chat.id, `turn ${i}`);
    }
    s.close();
    await expect.poll(() => sink.messages().filter((m) => m.endpoint === sub.endpoint).length).toBe(21);
    const delta = Object.fromEntries(names.map((n) => [n, queries(n) - before[n]!]));
    expect(delta).toEqual({ getLastChatMessageByRole: 0, getEnabledChatProviders: 0, getChatModelConfigByID: 0, getWebpushSubscriptionsByUserIDs: 1 });
  });

  it('encrypts on worker threads when asked: every push still decrypts, and the threads are known by their OS ids', async () => {
    const threaded = await startTestDaemon({ chat: { fakeTokens: 3, fakeTokenDelayMs: 1 }, webpush: { allowInsecureEndpoints: true, encryptionThreads: 2 } });
    const { token } = await createTestUser(threaded);
    const subs = [sink.newSubscription(), sink.newSubscription()];
    for (const sub of subs) expect((await pushApi(threaded.url, token).subscribe(sub)).status).toBe(204);
    const chatId = await finishTurn(threaded.url, token, 'Off the main thread');
    for (const sub of subs) {
      await expect.poll(() => sink.messages().filter((m) => m.endpoint === sub.endpoint && m.notification?.tag === chatId).length).toBe(1);
    }
    if (process.platform === 'linux') {
      await expect.poll(() => threaded.webpush!.threadIds()).toHaveLength(2);
      expect(threaded.webpush!.threadIds()).not.toContain(process.pid);
    }
    expect(sink.refusals()).toEqual([]);
  });

  it('skips interrupted turns and pushes the error body, urgently, for failed ones', async () => {
    const slow = await startTestDaemon({ chat: { fakeTokens: 500, fakeTokenDelayMs: 20 }, webpush: { allowInsecureEndpoints: true } });
    const { token } = await createTestUser(slow);
    const sub = sink.newSubscription();
    await pushApi(slow.url, token).subscribe(sub);
    const api = chatApi(slow.url, token);
    const chat = await api.createChat('stop me');
    const s = await openStream(slow.url, token, chat.id);
    await s.waitFor((e) => e.type === 'status' && e.status === 'running');
    await api.interrupt(chat.id);
    await s.waitFor((e) => e.type === 'status' && e.status === 'waiting');
    await expect.poll(() => slow.chats.worker.runningTurns()).toBe(0);
    await slow.webpush!.turnPush.drain();
    s.close();

    const failed = await finishTurn(daemon.url, (await subscribed()).token, 'please [fake-fail]');
    await expect.poll(() => sink.messages().some((m) => m.notification?.tag === failed)).toBe(true);
    const msg = sink.messages().find((m) => m.notification?.tag === failed)!;
    expect(msg.notification!.body).toBe('The model call failed.');
    expect(msg.urgency).toBe('high');
    expect(msg.topic).toBe(failed.replaceAll('-', ''));
    // Only the subscription's test push reached the interrupted chat's owner.
    expect(sink.messages().filter((m) => m.endpoint === sub.endpoint).length).toBe(1);
  });

  it('deletes 410 and 403 subscriptions and never contacts them again; keeps and reports a 500', async () => {
    const { user, token } = await subscribed();
    const gone = sink.newSubscription();
    const flaky = sink.newSubscription();
    const forbidden = sink.newSubscription();
    const p = pushApi(daemon.url, token);
    await p.subscribe(gone);
    await p.subscribe(flaky);
    await p.subscribe(forbidden);
    sink.respondWith(gone.endpoint, 410);
    sink.respondWith(flaky.endpoint, 500);
    sink.respondWith(forbidden.endpoint, 403);
    expect((await p.test()).status).toBe(204);
    const left = (await getWebpushSubscriptionsByUserID(daemon.db, user.id)).map((s) => s.endpoint);
    expect(left).toContain(flaky.endpoint);
    expect(left).not.toContain(gone.endpoint);
    expect(left).not.toContain(forbidden.endpoint);
    const goneHits = sink.hits(gone.endpoint);
    await p.test();
    expect(sink.hits(gone.endpoint)).toBe(goneHits);
    expect(sink.hits(flaky.endpoint)).toBe(3);
    const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
    expect(metrics).toMatch(/coderlite_webpush_dispatch_total\{result="gone"\} [1-9]/);
    expect(metrics).toMatch(/coderlite_webpush_dispatch_total\{result="failed"\} [1-9]/);
    expect(metrics).toMatch(/coderlite_webpush_dispatch_total\{result="rejected"\} [1-9]/);
  });

  it('refuses a payload over the 4 KiB record before sending anything', async () => {
    const { user, sub } = await subscribed();
    const hits = sink.hits(sub.endpoint);
    const huge = { title: 't'.repeat(5000), body: 'b', icon: `${daemon.url}/icon.png`, navigate: `${daemon.url}/chats/x` };
    await expect(daemon.webpush!.service.dispatchToUser(user.id, huge)).rejects.toThrow(/exceeds/);
    expect(sink.hits(sub.endpoint)).toBe(hits);
  });

  it('sweeps subscriptions without a success in 60 days', async () => {
    const { user } = await subscribed();
    await daemon.db.query(namedQuery('testAgeSubscriptions', "UPDATE webpush_subscriptions SET last_success_at = now() - interval '61 days' WHERE user_id = $1"), [user.id]);
    expect(await deleteStaleWebpushSubscriptions(daemon.db, 60)).toEqual([user.id]);
    expect(await getWebpushSubscriptionsByUserID(daemon.db, user.id)).toEqual([]);
  });

  it('validates endpoints and keys, and keeps other users out', async () => {
    const strict = await startTestDaemon({ webpush: {} });
    const { token } = await createTestUser(strict);
    const other = await createTestUser(strict);
    const p = pushApi(strict.url, token);
    const keys = sink.newSubscription();
    const cases: Array<[string, RegExp]> = [
      ['http://push.example.com/x', /https/],
      ['https://localhost/x', /localhost/],
      ['https://127.0.0.1/x', /private|loopback/],
      ['https://[::1]/x', /private|loopback/],
      ['https://10.1.2.3/x', /private|loopback/],
      ['https://169.254.169.254/latest', /private|loopback/],
      ['https://user:pw@push.example.com/x', /user info/],
      ['not a url', /not a URL/],
    ];
    for (const [endpoint, reason] of cases) {
      const res = await p.subscribe({ ...keys, endpoint });
      expect(res.status, endpoint).toBe(400);
      expect(res.body.detail, endpoint).toMatch(reason);
    }
    expect((await p.subscribe({ ...keys, endpoint: 'https://push.example.com/x', auth_key: 'AAAA' })).status).toBe(400);
    expect((await p.unsubscribe('https://push.example.com/unknown')).status).toBe(404);
    expect((await p.subscribe(keys, other.user.username)).status).toBe(403);
    expect((await p.unsubscribe(keys.endpoint, other.user.id)).status).toBe(403);
    expect((await p.test(other.user.id)).status).toBe(403);
  });

  it('refuses to dial a name that resolves to a loopback address', async () => {
    const strict = await startTestDaemon({ webpush: {} });
    const { token } = await createTestUser(strict);
    const port = new URL(sink.url).port;
    const res = await pushApi(strict.url, token).subscribe({ ...sink.newSubscription(), endpoint: `https://localtest.me:${port}/push/x` });
    // Either the name does not resolve offline or it resolves to 127.0.0.1 and is refused: never delivered.
    expect(res.status).toBe(400);
  });

  it('answers 404 for the whole API with --webpush=false', async () => {
    const off = await startTestDaemon({ webpush: { enabled: false } });
    const { token } = await createTestUser(off);
    expect((await pushApi(off.url, token).subscribe(sink.newSubscription())).status).toBe(404);
    expect((await pushApi(off.url, token).test()).status).toBe(404);
    const info = (await (await fetch(`${off.url}/api/v2/buildinfo`)).json()) as Record<string, unknown>;
    expect(info.webpush_public_key).toBeUndefined();
  });

  it('carries an invalidation from replica A to replica B', async () => {
    const { url } = await createTestDatabase();
    const a = await startTestDaemon({ postgresUrl: url, webpush: { allowInsecureEndpoints: true } });
    const b = await startTestDaemon({ postgresUrl: url, webpush: { allowInsecureEndpoints: true } });
    const { token } = await createTestUser(a);
    const first = sink.newSubscription();
    await pushApi(a.url, token).subscribe(first);
    // B caches the user's one subscription.
    await pushApi(b.url, token).test();
    expect(sink.hits(first.endpoint)).toBe(2);
    const second = sink.newSubscription();
    await pushApi(a.url, token).subscribe(second);
    await expect
      .poll(async () => {
        await pushApi(b.url, token).test();
        return sink.hits(second.endpoint);
      })
      .toBeGreaterThanOrEqual(2);
  });

  async function subscribed() {
    const u = await createTestUser(daemon);
    const sub = sink.newSubscription();
    await pushApi(daemon.url, u.token).subscribe(sub);
    return { ...u, sub };
  }
});
