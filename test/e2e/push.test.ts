import type { Browser, BrowserContext, Page, Worker } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { getWebpushSubscriptionsByUserID } from '../../src/daemon/store/webpush.js';
import { startPushSink, type SinkSubscription } from '../../src/scaletest/pushSink.js';
import { haveChromium, launchChromium, deliverUntilShown, pushDeliverer, type ShownNotification } from '../helpers/browser.js';
import { chatApi } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';

// Browser globals the functions run in the page and the service worker use (the project type-checks without the
// DOM and webworker libs).
declare const document: { dispatchEvent(event: unknown): boolean };
declare const Event: new (type: string) => unknown;
declare const self: {
  registration: { getNotifications(): Promise<ShownNotification[]>; pushManager: { subscribe: unknown } };
  dispatchEvent(event: unknown): boolean;
};
declare const ExtendableEvent: new (type: string) => object;

// The push after a turn, end to end: the console in headless Chromium tells its stream whether the owner watches,
// the daemon pushes (or not) to the loopback push service, which verifies and decrypts what arrives; the decrypted
// payload then goes into the service worker as the browser's push service would hand it over.
const sink = await startPushSink();
afterAll(() => sink.close());
const daemon = await startTestDaemon({ chat: { fakeTokens: 3, fakeTokenDelayMs: 20 }, webpush: { allowInsecureEndpoints: true } });
const origin = daemon.url;
const alice = await createTestUser(daemon, `alice${Math.random().toString(36).slice(2, 8)}`);
const api = chatApi(origin, alice.token);
const subscribe = (sub: SinkSubscription) => api.call('POST', '/api/v2/users/me/webpush/subscription', sub);

const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 10_000 });
const pushesFor = (chatId: string) => sink.messages().filter((m) => m.notification?.tag === chatId);

async function suppressed(): Promise<number> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  return Number(/coderlite_webpush_suppressed_total\{reason="owner_watching"\} (\d+)/.exec(text)?.[1] ?? 0);
}

/**
 * Puts the tab in the background. Headless Chromium keeps every tab visible and focused: focus emulation off makes
 * `document.hasFocus()` really false, and the page is told it is hidden as a browser tells a background tab.
 */
async function sendToBackground(page: Page): Promise<void> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Emulation.setFocusEmulationEnabled', { enabled: false });
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
}

describe.skipIf(!haveChromium)('push notifications users keep (headless Chromium, loopback push service)', () => {
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let worker: Worker;
  let deliver: (payload: unknown) => Promise<void>;
  const notifications = () =>
    worker.evaluate(async () => (await self.registration.getNotifications()).map((n) => ({ title: n.title, body: n.body, icon: n.icon, tag: n.tag, data: n.data })));

  beforeAll(async () => {
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    await context.grantPermissions(['notifications'], { origin });
    page = await context.newPage();
    await page.goto(`${origin}/`);
    await page.fill('#token', alice.token);
    await page.click('#sign-in button[type=submit]');
    await page.locator('#who', { hasText: alice.user.username }).waitFor();
    worker = context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker'));
    deliver = await pushDeliverer(context, page, origin);
    expect((await subscribe(sink.newSubscription())).status).toBe(204);
  });

  afterAll(() => browser?.close());

  it('skips and counts the push while the owner has the chat focused; pushes with Topic and tag once the tab is hidden; the SW shows it', async () => {
    const chat = await api.createChat('watch me work');
    // Its first turn ends before anyone watches.
    await poll(() => pushesFor(chat.id).length).toBe(1);

    await page.goto(`${origin}/chats/${chat.id}`);
    await poll(() => daemon.webpush!.presence.isWatching(chat.id, alice.user.id)).toBe(true);
    const before = await suppressed();
    await page.fill('#content', 'while you watch');
    await page.click('#composer button[type=submit]');
    await poll(() => page.locator('#messages li.msg.assistant[data-message-id]').count()).toBe(2);
    // Counted when the turn ended: skipped, not late.
    await poll(suppressed).toBe(before + 1);
    await daemon.webpush!.turnPush.drain();
    expect(pushesFor(chat.id)).toHaveLength(1);

    await sendToBackground(page);
    await poll(() => daemon.webpush!.presence.isWatching(chat.id, alice.user.id)).toBe(false);
    expect((await api.send(chat.id, 'after you looked away')).status).toBe(201);
    await poll(() => pushesFor(chat.id).length).toBe(2);
    const push = pushesFor(chat.id)[1]!;
    expect(push.topic).toBe(chat.id.replaceAll('-', ''));
    expect(push.urgency).toBe('normal');
    const navigate = `${origin}/chats/${chat.id}`;
    // Decrypted by the push service: a declarative message Safari would show by itself.
    expect(push.payload).toEqual({
      web_push: 8030,
      notification: { title: 'watch me work', body: 'Fake reply to "after you looked away".', navigate, icon: `${origin}/icon.png`, tag: chat.id },
    });
    expect(await suppressed()).toBe(before + 1);

    // Handed to the service worker as delivered, it shows (while a console tab is open, too).
    await deliverUntilShown(deliver, notifications, push.payload, chat.id);
    await poll(notifications).toContainEqual({ title: 'watch me work', body: 'Fake reply to "after you looked away".', icon: `${origin}/icon.png`, tag: chat.id, data: { url: navigate } });
    // A newer push about the same chat replaces it on screen.
    await deliver({ web_push: 8030, notification: { title: 'watch me work', body: 'newer', navigate, tag: chat.id } });
    await poll(async () => (await notifications()).filter((n) => n.tag === chat.id).map((n) => n.body)).toEqual(['newer']);
  });

  it('pushsubscriptionchange: subscribes again, registers the new subscription and removes the old', async () => {
    const old = sink.newSubscription();
    const fresh = sink.newSubscription();
    expect((await subscribe(old)).status).toBe(204);
    // The console handed the API token to the worker when it signed in.
    const storedToken = () =>
      worker.evaluate(`new Promise((resolve) => {
        const open = indexedDB.open('coder-lite', 1);
        open.onupgradeneeded = () => open.result.createObjectStore('kv');
        open.onsuccess = () => {
          const get = open.result.transaction('kv').objectStore('kv').get('token');
          get.onsuccess = () => { open.result.close(); resolve(get.result ?? null); };
        };
      })`);
    await poll(storedToken).toBe(alice.token);

    // No real push service is in reach: the browser's new subscription is the sink's. Chromium never fires the
    // event itself, so the test dispatches it, without a new subscription as Safari does.
    await worker.evaluate(
      ({ old, fresh }) => {
        self.registration.pushManager.subscribe = async () => ({
          endpoint: fresh.endpoint,
          toJSON: () => ({ endpoint: fresh.endpoint, keys: { auth: fresh.auth_key, p256dh: fresh.p256dh_key } }),
        });
        const event = new ExtendableEvent('pushsubscriptionchange');
        Object.defineProperty(event, 'oldSubscription', { value: { endpoint: old.endpoint } });
        Object.defineProperty(event, 'newSubscription', { value: null });
        self.dispatchEvent(event);
      },
      { old, fresh },
    );
    const endpoints = async () => (await getWebpushSubscriptionsByUserID(daemon.db, alice.user.id)).map((s) => s.endpoint);
    await poll(async () => (await endpoints()).includes(old.endpoint)).toBe(false);
    expect(await endpoints()).toContain(fresh.endpoint);
    // The daemon proved the new one with its test push before storing it.
    expect(sink.hits(fresh.endpoint)).toBe(1);
  });
});
