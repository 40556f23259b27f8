import { mkdirSync } from 'node:fs';

import type { Browser, BrowserContext, BrowserContextOptions, Page, Worker } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startPushSink } from '../../src/scaletest/pushSink.js';
import { haveChromium, launchChromium, deliverUntilShown, pushDeliverer, type ShownNotification } from '../helpers/browser.js';
import { chatApi } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';

// The browser globals the functions run inside the page and the service worker use: the project type-checks
// without the DOM and webworker libs, and module-local declarations leave the serialized functions untouched.
declare const window: {
  marker?: number;
  isSecureContext: boolean;
  innerWidth: number;
  PushManager?: unknown;
  subscribedWith?: { userVisibleOnly?: boolean; key: string };
  unsubscribed?: boolean;
};
declare const localStorage: { length: number };
declare const document: {
  documentElement: { scrollWidth: number };
  getElementById(id: string): { hidden: boolean; querySelector(selector: string): { textContent: string | null } | null } | null;
};
declare const navigator: { serviceWorker: { ready: Promise<{ active: { scriptURL: string } | null }>; controller: { scriptURL: string } | null } };
declare const self: {
  registration: { getNotifications(filter?: { tag?: string }): Promise<ShownNotification[]> };
  clients: { openWindow(url: string): Promise<unknown> };
  dispatchEvent(event: unknown): boolean;
  opened?: string;
};
declare const NotificationEvent: new (type: string, init: { notification: ShownNotification }) => unknown;
declare const PushManager: {
  prototype: { subscribe(options?: { userVisibleOnly?: boolean; applicationServerKey?: ArrayBuffer }): Promise<unknown>; getSubscription(): Promise<unknown> };
};

// The console in real headless Chromium against a real daemon: the fake provider streams 10 parts, 60 ms apart,
// slow enough to see the reply grow. Loopback push endpoints are allowed so a subscription can reach the push sink.
const daemon = await startTestDaemon({ chat: { fakeTokens: 10, fakeTokenDelayMs: 60 }, webpush: { allowInsecureEndpoints: true } });
const origin = daemon.url;
const port = new URL(origin).port;
// A name that is not localhost: Chromium treats an http page there as not a secure context.
const insecureOrigin = `http://console.test:${port}`;
const screenshots = 'test-artifacts/console';

const alice = await createTestUser(daemon, `alice${Math.random().toString(36).slice(2, 8)}`);
const api = chatApi(origin, alice.token);

let browser: Browser;
/** Every request any page or worker made, with the origin the context is allowed to talk to. */
const requests: Array<{ url: string; allowed: string }> = [];
/** Uncaught errors in the console's pages, and anything the Content-Security-Policy blocked. */
const pageErrors: string[] = [];

async function newContext(opts: BrowserContextOptions & { allowed?: string } = {}): Promise<BrowserContext> {
  const { allowed = origin, ...options } = opts;
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, ...options });
  context.on('request', (r) => requests.push({ url: r.url(), allowed }));
  context.on('weberror', (e) => pageErrors.push(e.error().message));
  context.on('console', (m) => {
    if (m.text().includes('Content Security Policy')) pageErrors.push(m.text());
  });
  return context;
}

/** Opens the console and signs in through its form. */
async function signIn(context: BrowserContext, at = origin, path = '/', who = alice): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${at}${path}`);
  await page.fill('#token', who.token);
  await page.click('#sign-in button[type=submit]');
  // Not expect.poll: this also runs in hooks.
  await page.locator('#who', { hasText: who.user.username }).waitFor();
  return page;
}

/** Browser round trips and a permission prompt's auto-dismissal (~2 s) outlast expect.poll's default second. */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 10_000 });

const listStatus = (page: Page, chatId: string) => page.getAttribute(`#chats li[data-chat-id="${chatId}"] .status`, 'data-status');

describe.skipIf(!haveChromium)('web console in headless Chromium', () => {
  beforeAll(async () => {
    mkdirSync(screenshots, { recursive: true });
    browser = await launchChromium({ hostRules: ['MAP console.test 127.0.0.1'] });
  });

  afterAll(() => browser?.close());

  it('signs in, creates a chat, streams the reply in, and keeps the list live', async () => {
    const context = await newContext();
    const page = await signIn(context);
    // Set once: were the page reloaded, the marker would be gone.
    await page.evaluate(() => (window.marker = 1));

    await page.fill('#new-message', 'hello from the console');
    await page.click('#new-chat button[type=submit]');
    await page.waitForURL(/\/chats\/[0-9a-f-]{36}$/);
    const chatId = page.url().split('/').pop()!;
    await poll(() => page.textContent('#chat-title')).toBe('hello from the console');

    // Parts arrive one by one: the draft shows a beginning of the reply before the message is persisted.
    const partial = await (await page.waitForFunction(() => {
      const draft = document.getElementById('draft');
      const text = draft?.querySelector('.content')?.textContent;
      return draft && !draft.hidden && text ? text : undefined;
    }, undefined, { polling: 10 })).jsonValue();
    const reply = 'Fake reply to "hello from the console". token1 token2 token3 token4 token5 token6 token7 token8 token9';
    expect(reply.startsWith(partial!)).toBe(true);
    expect(partial!.length).toBeLessThan(reply.length);
    await page.screenshot({ path: `${screenshots}/chat-view-streaming.png`, fullPage: true });

    const assistant = page.locator('#messages li.msg.assistant[data-message-id] .content');
    await poll(() => assistant.textContent()).toBe(reply);
    expect(await page.isHidden('#draft')).toBe(true);
    expect(await page.locator('#messages li.msg.user .content').textContent()).toBe('hello from the console');
    await poll(() => listStatus(page, chatId)).toBe('waiting');
    expect(await page.getAttribute('#chat-pane .status', 'data-status')).toBe('waiting');

    // A chat made elsewhere (the API) joins the list and changes status there without a reload.
    const other = await api.createChat('made through the API');
    await poll(() => listStatus(page, other.id)).toMatch(/^(pending|running)$/);
    await poll(() => listStatus(page, other.id)).toBe('waiting');
    expect(await page.locator('#chats li[data-chat-id] .title').allTextContents()).toEqual(['made through the API', 'hello from the console']);

    // A second message from the composer starts another turn.
    await page.fill('#content', 'and once more');
    await page.click('#composer button[type=submit]');
    await poll(() => page.locator('#messages li.msg.assistant[data-message-id]').count()).toBe(2);
    expect(await page.evaluate(() => window.marker)).toBe(1);

    await page.screenshot({ path: `${screenshots}/chat-view.png`, fullPage: true });
    await page.click('a.brand');
    await page.waitForURL(`${origin}/`);
    await page.screenshot({ path: `${screenshots}/chat-list.png`, fullPage: true });
    await context.close();
  });

  it('refuses a wrong token with a message, and forgets the token on sign-out', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    await page.fill('#token', 'abcdefghij-notthetokennotthetokennotthe');
    await page.click('#sign-in button[type=submit]');
    await poll(() => page.textContent('#sign-in .error')).toBe('That token was not accepted.');
    await page.fill('#token', alice.token);
    await page.click('#sign-in button[type=submit]');
    await page.locator('#who', { hasText: alice.user.username }).waitFor();
    await page.reload();
    await page.locator('#who', { hasText: alice.user.username }).waitFor();
    await page.click('#sign-out');
    await page.reload();
    await page.locator('#sign-in').waitFor();
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    await context.close();
  });

  it('is usable at 375 px: one pane at a time, nothing wider than the screen, interrupt works', async () => {
    const context = await newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
    const page = await signIn(context);
    const noOverflow = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    await poll(() => page.locator('#chats li[data-chat-id]').count()).toBeGreaterThan(0);
    expect(await noOverflow()).toBe(true);
    expect(await page.isHidden('#chat-pane')).toBe(true);
    await page.screenshot({ path: `${screenshots}/chat-list-375.png`, fullPage: true });

    await page.fill('#new-message', 'a long turn to interrupt on a phone');
    await page.click('#new-chat button[type=submit]');
    await page.waitForURL(/\/chats\//);
    const chatId = page.url().split('/').pop()!;
    expect(await page.isHidden('.list-pane')).toBe(true);
    expect(await page.isVisible('a.back')).toBe(true);
    const send = await page.locator('#composer button[type=submit]').boundingBox();
    expect(send!.x + send!.width).toBeLessThanOrEqual(375);

    // Interrupt as soon as the turn runs: the chat goes idle with no reply persisted.
    await poll(() => page.getAttribute('#chat-pane .status', 'data-status')).toBe('running');
    await page.click('#interrupt');
    await poll(() => page.getAttribute('#chat-pane .status', 'data-status')).toBe('waiting');
    expect(await page.isDisabled('#interrupt')).toBe(true);
    expect(await noOverflow()).toBe(true);
    await page.screenshot({ path: `${screenshots}/chat-view-375.png`, fullPage: true });

    await page.click('a.back');
    await page.waitForURL(`${origin}/`);
    expect(await listStatus(page, chatId)).toBe('waiting');
    await context.close();
  });

  it('keeps an interrupted reply on screen, marked "interrupted"', async () => {
    const context = await newContext();
    const page = await signIn(context);
    await page.fill('#new-message', 'stop me halfway');
    await page.click('#new-chat button[type=submit]');
    await page.waitForURL(/\/chats\/[0-9a-f-]{36}$/);
    // Some of the reply has streamed in when the user interrupts.
    await page.waitForFunction(() => Boolean(document.getElementById('draft')?.querySelector('.content')?.textContent), undefined, { polling: 10 });
    await page.click('#interrupt');
    await poll(() => page.getAttribute('#chat-pane .status', 'data-status')).toBe('waiting');
    const kept = page.locator('#messages li.msg.assistant.interrupted');
    await poll(() => kept.count()).toBe(1);
    expect(await kept.locator('.marker').textContent()).toBe('interrupted');
    const text = (await kept.locator('.content').textContent())!;
    expect('Fake reply to "stop me halfway". token1 token2 token3 token4 token5 token6 token7 token8 token9'.startsWith(text)).toBe(true);
    expect(text.length).toBeGreaterThan(0);
    // Nothing was saved for the turn, and the draft is gone.
    expect(await page.locator('#messages li.msg.assistant[data-message-id]').count()).toBe(0);
    expect(await page.isHidden('#draft')).toBe(true);
    await page.screenshot({ path: `${screenshots}/chat-interrupted.png`, fullPage: true });
    await context.close();
  });

  it('shows the queue in order, deletes from it, and shows each queued message as it promotes', async () => {
    const context = await newContext();
    const chat = await api.createChat('a chat with a queue');
    // Queued while the first turn is about to run; the interrupt leaves them queued, so the queue holds still.
    for (const text of ['queued one', 'queued two', 'queued three']) expect((await api.send(chat.id, text)).status).toBe(202);
    await api.interrupt(chat.id);
    const page = await signIn(context, origin, `/chats/${chat.id}`);
    await poll(() => page.getAttribute('#chat-pane .status', 'data-status')).toBe('waiting');
    const queued = () => page.locator('#queue li.queued .content').allTextContents();
    await poll(queued).toEqual(['queued one', 'queued two', 'queued three']);
    expect(await page.locator('#queue li.queued .role').allTextContents()).toEqual(['Queued · 1', 'Queued · 2', 'Queued · 3']);
    await page.screenshot({ path: `${screenshots}/chat-queue.png`, fullPage: true });

    await page.click('#queue li.queued:nth-child(2) button.delete');
    await poll(queued).toEqual(['queued one', 'queued three']);
    const first = await page.getAttribute('#queue li.queued:nth-child(1)', 'data-queued-id');
    // Deleting what is no longer queued is a 404 from the server, said as such.
    expect((await api.call('DELETE', `/api/experimental/chats/${chat.id}/queue/999999999`)).status).toBe(404);

    // A new message runs; the queued ones follow it, each leaving the queue as its turn starts.
    await page.fill('#content', 'go on');
    await page.click('#composer button[type=submit]');
    await poll(queued).toEqual([]);
    await poll(() => page.isHidden('#queue-head')).toBe(true);
    const users = () => page.locator('#messages li.msg.user .content').allTextContents();
    await poll(users).toEqual(expect.arrayContaining(['go on', 'queued one', 'queued three']));
    expect(await users()).not.toContain('queued two');
    await poll(() => page.getAttribute('#chat-pane .status', 'data-status')).toBe('waiting');
    expect((await api.call('DELETE', `/api/experimental/chats/${chat.id}/queue/${first}`)).status).toBe(404);
    await context.close();
  });

  it('archives a chat from the list, and leaves it when it was open', async () => {
    const context = await newContext();
    const chat = await api.createChat('archive me');
    const page = await signIn(context, origin, `/chats/${chat.id}`);
    const row = page.locator(`#chats li[data-chat-id="${chat.id}"]`);
    await row.waitFor();
    await page.screenshot({ path: `${screenshots}/chat-list-archive.png` });
    await row.locator('button.archive').click();
    await poll(() => row.count()).toBe(0);
    await page.waitForURL(`${origin}/`);
    expect((await api.get(chat.id)).body.archived).toBe(true);
    // Still gone after a reload: the server's list leaves archived chats out.
    await page.reload();
    await page.locator('#chats li[data-chat-id]').first().waitFor();
    expect(await page.locator(`#chats li[data-chat-id="${chat.id}"]`).count()).toBe(0);
    await context.close();
  });

  it('pages a long chat list', async () => {
    const bob = await createTestUser(daemon, `bob${Math.random().toString(36).slice(2, 8)}`);
    const bobApi = chatApi(origin, bob.token);
    for (let i = 0; i < 52; i++) await bobApi.createChat(`chat number ${i}`);
    const context = await newContext();
    const page = await signIn(context, origin, '/', bob);
    const rows = page.locator('#chats li[data-chat-id]');
    await poll(() => rows.count()).toBe(50);
    expect(await page.isVisible('#load-more')).toBe(true);
    await page.click('#load-more');
    await poll(() => rows.count()).toBe(52);
    expect(await page.isHidden('#load-more')).toBe(true);
    const titles = await page.locator('#chats li[data-chat-id] .title').allTextContents();
    expect(titles[0]).toBe('chat number 51');
    expect(titles.at(-1)).toBe('chat number 0');
    await page.screenshot({ path: `${screenshots}/chat-list-paged.png` });
    await context.close();
  });

  it('sends each new chat and message once, with one Idempotency-Key across retries after a network error and a 503', async () => {
    const context = await newContext();
    const seen: Array<{ path: string; key: string | undefined; outcome: string }> = [];
    // The first try of each send never reaches the server, the second meets a 503; the third goes through.
    await context.route(/\/api\/experimental\/chats(\/[0-9a-f-]{36}\/messages)?$/, async (route) => {
      const request = route.request();
      if (request.method() !== 'POST') return route.fallback();
      const path = new URL(request.url()).pathname;
      const tries = seen.filter((s) => s.path === path).length;
      const outcome = tries === 0 ? 'network error' : tries === 1 ? '503' : 'sent';
      seen.push({ path, key: request.headers()['idempotency-key'], outcome });
      if (outcome === 'network error') return route.abort('connectionreset');
      if (outcome === '503') return route.fulfill({ status: 503, headers: { 'retry-after': '0' }, json: { message: 'busy' } });
      return route.fallback();
    });
    const page = await signIn(context);
    await page.fill('#new-message', 'sent through a flaky network');
    await page.click('#new-chat button[type=submit]');
    await page.waitForURL(/\/chats\/[0-9a-f-]{36}$/);
    const chatId = page.url().split('/').pop()!;
    await poll(() => page.getAttribute('#chat-pane .status', 'data-status')).toBe('waiting');
    await page.fill('#content', 'and a message too');
    await page.click('#composer button[type=submit]');
    await poll(() => page.locator('#messages li.msg.user .content').allTextContents()).toEqual(['sent through a flaky network', 'and a message too']);

    for (const path of ['/api/experimental/chats', `/api/experimental/chats/${chatId}/messages`]) {
      const tries = seen.filter((s) => s.path === path);
      expect(tries.map((t) => t.outcome), path).toEqual(['network error', '503', 'sent']);
      expect(tries[0]!.key, path).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(new Set(tries.map((t) => t.key)).size, path).toBe(1);
    }
    // Two logical sends, two keys.
    expect(new Set(seen.map((s) => s.key)).size).toBe(2);
    expect((await api.call('GET', '/api/experimental/chats?limit=100')).body.chats.filter((c: { title: string }) => c.title === 'sent through a flaky network')).toHaveLength(1);
    await context.close();
  });

  describe('service worker', () => {
    let context: BrowserContext;
    let page: Page;
    let worker: Worker;
    let deliver: (payload: unknown) => Promise<void>;
    const notifications = () =>
      worker.evaluate(async () =>
        (await self.registration.getNotifications()).map((n) => ({ title: n.title, body: n.body, icon: n.icon, tag: n.tag, data: n.data })),
      );

    beforeAll(async () => {
      context = await newContext();
      await context.grantPermissions(['notifications'], { origin });
      page = await signIn(context);
      expect(await page.evaluate(() => navigator.serviceWorker.ready.then((r) => r.active?.scriptURL))).toBe(`${origin}/sw.js`);
      worker = context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker'));
      deliver = await pushDeliverer(context, page, origin);
    });

    afterAll(() => context?.close());

    it('registers, controls the page, and shows a declarative push with its title, body, icon, chat tag and URL', async () => {
      expect(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL)).toBe(`${origin}/sw.js`);
      const chat = '11111111-1111-4111-8111-111111111111';
      const payload = { web_push: 8030, notification: { title: 'Fix the build', body: 'All tests pass now.', navigate: `${origin}/chats/${chat}`, icon: `${origin}/icon.png`, tag: chat } };
      await deliverUntilShown(deliver, notifications, payload, chat);
      await poll(notifications).toEqual([
        { title: 'Fix the build', body: 'All tests pass now.', icon: `${origin}/icon.png`, tag: chat, data: { url: `${origin}/chats/${chat}` } },
      ]);
    });

    it('shows every push, even one about the chat a visible, focused tab shows (the server decides)', async () => {
      const chat = await api.createChat('watched closely');
      await page.goto(`${origin}/chats/${chat.id}`);
      await poll(() => page.textContent('#chat-title')).toBe('watched closely');
      await deliver({ web_push: 8030, notification: { title: 'watched closely', body: 'done', navigate: `${origin}/chats/${chat.id}`, tag: chat.id } });
      // The payload the daemon sent before Declarative Web Push is still understood; its URL is its tag.
      await deliver({ title: 'elsewhere', body: 'done too', data: { url: '/chats/22222222-2222-4222-8222-222222222222' } });
      await poll(async () => (await notifications()).map((n) => n.title)).toEqual(expect.arrayContaining(['watched closely', 'elsewhere']));
      expect((await notifications()).find((n) => n.title === 'watched closely')?.tag).toBe(chat.id);
      expect((await notifications()).find((n) => n.title === 'elsewhere')?.tag).toBe(`${origin}/chats/22222222-2222-4222-8222-222222222222`);
    });

    it('a click brings an open console tab to the chat URL, and closes the notification', async () => {
      await page.goto(`${origin}/`);
      await poll(() => page.evaluate(() => Boolean(navigator.serviceWorker.controller))).toBe(true);
      const url = `${origin}/chats/22222222-2222-4222-8222-222222222222`;
      // Chromium offers no way to click a notification from outside, so the worker dispatches the click itself.
      await worker.evaluate(async (tag) => {
        const [n] = await self.registration.getNotifications({ tag });
        self.dispatchEvent(new NotificationEvent('notificationclick', { notification: n! }));
      }, url);
      await page.waitForURL(url);
      await poll(async () => (await notifications()).map((n) => n.tag)).not.toContain(url);
    });

    it('a click with no console tab open opens a window at the chat URL', async () => {
      await page.goto('about:blank');
      const url = `${origin}/chats/11111111-1111-4111-8111-111111111111`;
      const tag = '11111111-1111-4111-8111-111111111111';
      // A dispatched event lacks a real click's permission to open windows (Chromium refuses it), so the
      // worker's openWindow is observed instead of performed.
      const opened = await worker.evaluate(async (tag) => {
        self.clients.openWindow = async (u) => {
          self.opened = u;
          return null;
        };
        const [n] = await self.registration.getNotifications({ tag });
        self.dispatchEvent(new NotificationEvent('notificationclick', { notification: n! }));
        for (let i = 0; i < 100 && !self.opened; i++) await new Promise((r) => setTimeout(r, 20));
        return self.opened;
      }, tag);
      expect(opened).toBe(url);
    });
  });

  describe('enable notifications', () => {
    const pushRequests = (from: number) => requests.slice(from).filter((r) => r.url.includes('/webpush/'));
    const clickEnable = async (page: Page) => {
      await poll(() => page.textContent('#notifications')).toBe('Enable notifications');
      await page.click('#notifications');
      await poll(() => page.textContent('#push-message')).not.toBe('');
      return page.textContent('#push-message');
    };

    it('says so when the browser has no push support, and sends nothing', async () => {
      const context = await newContext();
      await context.addInitScript(() => {
        delete window.PushManager;
      });
      const page = await signIn(context);
      const before = requests.length;
      expect(await clickEnable(page)).toBe('This browser does not support push notifications.');
      expect(pushRequests(before)).toEqual([]);
      await context.close();
    });

    it('says so when the page is not a secure context', async () => {
      const context = await newContext({ allowed: insecureOrigin });
      const page = await signIn(context, insecureOrigin);
      expect(await page.evaluate(() => window.isSecureContext)).toBe(false);
      const before = requests.length;
      expect(await clickEnable(page)).toMatch(/^Notifications need a secure page/);
      expect(pushRequests(before)).toEqual([]);
      await context.close();
    });

    it('says so when permission is denied', async () => {
      const context = await newContext();
      const page = await signIn(context);
      const before = requests.length;
      expect(await clickEnable(page)).toMatch(/^Notifications are blocked for this site/);
      expect(pushRequests(before)).toEqual([]);
      await context.close();
    });

    it('says so when pushManager.subscribe fails, as it does with no push service in reach', async () => {
      const context = await newContext();
      await context.grantPermissions(['notifications'], { origin });
      const page = await signIn(context);
      const before = requests.length;
      expect(await clickEnable(page)).toMatch(/^This browser could not subscribe to push notifications: .+/);
      expect(pushRequests(before)).toEqual([]);
      expect(await page.textContent('#notifications')).toBe('Enable notifications');
      await context.close();
    });

    it('with a successful (stubbed) subscription, POSTs exactly {endpoint, auth_key, p256dh_key}; disabling DELETEs it', async () => {
      const sink = await startPushSink();
      const subscription = sink.newSubscription();
      const context = await newContext();
      await context.grantPermissions(['notifications'], { origin });
      // The browser's push service is out of reach here: the subscription it would return is the sink's.
      await context.addInitScript((sub) => {
        let current: unknown = null;
        const fake = {
          endpoint: sub.endpoint,
          options: { applicationServerKey: null },
          toJSON: () => ({ endpoint: sub.endpoint, expirationTime: null, keys: { auth: sub.auth_key, p256dh: sub.p256dh_key } }),
          unsubscribe: async () => {
            window.unsubscribed = true;
            current = null;
            return true;
          },
        };
        PushManager.prototype.subscribe = async (options) => {
          const key = new Uint8Array(options!.applicationServerKey!);
          window.subscribedWith = { userVisibleOnly: options?.userVisibleOnly, key: btoa(String.fromCharCode(...key)) };
          current = fake;
          return fake;
        };
        PushManager.prototype.getSubscription = async () => current;
      }, subscription);
      const sent: Array<{ method: string; body: unknown; status?: number }> = [];
      await context.route('**/api/v2/users/me/webpush/subscription', async (route) => {
        const entry: (typeof sent)[number] = { method: route.request().method(), body: route.request().postDataJSON() };
        sent.push(entry);
        const res = await route.fetch();
        entry.status = res.status();
        await route.fulfill({ response: res });
      });
      const page = await signIn(context);

      expect(await clickEnable(page)).toBe('Notifications are on: you hear from a chat when its turn ends.');
      expect(sent).toEqual([{ method: 'POST', body: subscription, status: 204 }]);
      expect(Object.keys(sent[0]!.body as object).sort()).toEqual(['auth_key', 'endpoint', 'p256dh_key']);
      const { webpush_public_key: key } = (await (await fetch(`${origin}/api/v2/buildinfo`)).json()) as { webpush_public_key: string };
      const used = await page.evaluate(() => window.subscribedWith);
      expect(used?.userVisibleOnly).toBe(true);
      expect(Buffer.from(used!.key, 'base64').toString('base64url')).toBe(key.replace(/=+$/, ''));
      // The daemon accepted it for real: its test notification reached the sink, decrypted.
      await poll(() => sink.received()).toBe(1);

      expect(await page.textContent('#notifications')).toBe('Disable notifications');
      await page.click('#notifications');
      await poll(() => page.textContent('#push-message')).toBe('Notifications are off.');
      expect(sent[1]).toEqual({ method: 'DELETE', body: { endpoint: subscription.endpoint }, status: 204 });
      expect(await page.evaluate(() => window.unsubscribed)).toBe(true);
      expect(await page.textContent('#notifications')).toBe('Enable notifications');
      await context.close();
      await sink.close();
    });
  });

  it('made no request outside the daemon’s origin, threw nothing, and broke no CSP rule', () => {
    expect(requests.length).toBeGreaterThan(20);
    const foreign = requests.filter((r) => new URL(r.url).origin !== r.allowed);
    expect(foreign).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
