import { existsSync } from 'node:fs';

import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium (`.ci/run` installs it); `CODER_LITE_CHROMIUM` points elsewhere. */
export const chromiumPath = process.env.CODER_LITE_CHROMIUM ?? '/usr/bin/chromium';
export const haveChromium = existsSync(chromiumPath);

/**
 * Headless Chromium that stays off the network: without the background-networking flags it dials Google's hosts at
 * every start, which this closed network refuses. `hostRules` maps test host names to loopback.
 */
export function launchChromium(opts: { hostRules?: string[] } = {}): Promise<Browser> {
  const args = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  if (opts.hostRules?.length) args.push(`--host-resolver-rules=${opts.hostRules.join(', ')}`);
  return chromium.launch({ executablePath: chromiumPath, headless: true, args });
}

/**
 * Delivers `payload` until `shown()` lists a notification with its tag. The first push the DevTools protocol hands a
 * freshly started service worker is now and then dropped on a loaded machine (seen in about one run in five, never
 * reproduced by hand); a push service retries undelivered messages too. The tag makes a repeat replace, not add.
 */
export async function deliverUntilShown(deliver: (payload: unknown) => Promise<void>, shown: () => Promise<ShownNotification[]>, payload: unknown, tag: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    await deliver(payload);
    for (let i = 0; i < 40; i++) {
      if ((await shown()).some((n) => n.tag === tag)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`no notification tagged ${tag} after 5 deliveries`);
}

/** A notification as the service worker's registration lists it. */
export interface ShownNotification {
  title: string;
  body: string;
  icon: string;
  tag: string;
  data: unknown;
}

/**
 * Hands payloads to the console's service worker as a push service would, through the DevTools protocol (what
 * DevTools' own "Push" button sends).
 */
export async function pushDeliverer(context: BrowserContext, page: Page, origin: string): Promise<(payload: unknown) => Promise<void>> {
  const cdp = await context.newCDPSession(page);
  const registrationId = new Promise<string>((resolve) =>
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => {
      const live = e.registrations.find((r) => !r.isDeleted && r.scopeURL === `${origin}/`);
      if (live) resolve(live.registrationId);
    }),
  );
  await cdp.send('ServiceWorker.enable');
  const id = await registrationId;
  return async (payload) => {
    await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId: id, data: JSON.stringify(payload) });
  };
}
