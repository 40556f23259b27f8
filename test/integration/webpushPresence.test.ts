import { afterAll, describe, expect, it } from 'vitest';

import { startPushSink } from '../../src/scaletest/pushSink.js';
import { chatApi, openStream } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase } from '../helpers/db.js';

const sink = await startPushSink();
afterAll(() => sink.close());
// Two replicas on one database: the owner watches on A, the turn may run on either.
const { url } = await createTestDatabase();
const a = await startTestDaemon({ postgresUrl: url, chat: { fakeTokens: 2, fakeTokenDelayMs: 1 }, webpush: { allowInsecureEndpoints: true } });
const b = await startTestDaemon({ postgresUrl: url, chat: { fakeTokens: 2, fakeTokenDelayMs: 1 }, webpush: { allowInsecureEndpoints: true } });

async function suppressed(): Promise<number> {
  let n = 0;
  for (const d of [a, b]) {
    const text = await (await fetch(`${d.url}/metrics`)).text();
    n += Number(/coderlite_webpush_suppressed_total\{reason="owner_watching"\} (\d+)/.exec(text)?.[1] ?? 0);
  }
  return n;
}

describe('presence across replicas', () => {
  it('skips and counts the push while the owner watches on another replica; pushes again once they look away', async () => {
    const { user, token } = await createTestUser(a);
    const sub = sink.newSubscription();
    expect((await chatApi(a.url, token).call('POST', '/api/v2/users/me/webpush/subscription', sub)).status).toBe(204);
    const api = chatApi(b.url, token);
    const chat = await api.createChat('first turn');
    const stream = await openStream(a.url, token, chat.id);
    const pushes = () => sink.messages().filter((m) => m.endpoint === sub.endpoint && m.notification?.tag === chat.id).length;
    await expect.poll(pushes).toBe(1);

    stream.ws.send(JSON.stringify({ type: 'presence', watching: true }));
    await expect.poll(() => [a, b].map((d) => d.webpush!.presence.isWatching(chat.id, user.id))).toEqual([true, true]);
    const before = await suppressed();
    const assistants = () => stream.events().filter((e) => e.type === 'message' && e.message.role === 'assistant').length;
    await api.send(chat.id, 'second turn');
    // The turn's end is decided when it is counted: it was skipped, not sent late.
    await expect.poll(suppressed).toBe(before + 1);
    await Promise.all([a.webpush!.turnPush.drain(), b.webpush!.turnPush.drain()]);
    expect(pushes()).toBe(1);

    stream.ws.send(JSON.stringify({ type: 'presence', watching: false }));
    await expect.poll(() => [a, b].map((d) => d.webpush!.presence.isWatching(chat.id, user.id))).toEqual([false, false]);
    await stream.waitFor(() => assistants() === 2);
    await api.send(chat.id, 'third turn');
    await stream.waitFor(() => assistants() === 3);
    await expect.poll(pushes).toBe(2);
    expect(await suppressed()).toBe(before + 1);
    stream.close();
  });

  it('forgets a viewer whose stream closed, on every replica', async () => {
    const { user, token } = await createTestUser(a);
    const chat = await chatApi(a.url, token).createChat('watch then leave');
    const stream = await openStream(b.url, token, chat.id);
    stream.ws.send(JSON.stringify({ type: 'presence', watching: true }));
    await expect.poll(() => a.webpush!.presence.isWatching(chat.id, user.id)).toBe(true);
    stream.close();
    await expect.poll(() => [a, b].map((d) => d.webpush!.presence.isWatching(chat.id, user.id))).toEqual([false, false]);
  });
});
