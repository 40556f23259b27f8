import webpush from 'web-push';

import type { Database } from '../postgres/pool.js';
import type { Cancel, Subscriber } from '../pubsub/pubsub.js';
import { getVapidKeys, insertVapidKeysIfAbsent, notifyVapidChange, upsertVapidKeys, type VapidKeys } from '../store/siteConfig.js';
import { countWebpushSubscriptions, deleteAllWebpushSubscriptions } from '../store/webpush.js';

export const vapidChangeChannel = 'webpush:vapid_change';

export class VapidSubjectError extends Error {}

/**
 * The `sub` claim (DESIGN §6): https: URLs and mailto: stay as they are, a bare e-mail gets one `mailto:` (Apple
 * answers 403 BadJwtToken to `mailto:mailto:`), and a localhost subject is refused.
 */
export function normalizeSubject(subject: string): string {
  const s = subject.trim();
  let out: string;
  if (/^mailto:/i.test(s)) out = `mailto:${s.replace(/^(mailto:)+/i, '')}`;
  else if (/^https:\/\//i.test(s)) out = s;
  else if (/^[^@\s/:]+@[^@\s/:]+$/.test(s)) out = `mailto:${s}`;
  else throw new VapidSubjectError(`invalid --webpush-subject "${subject}": expected an https: URL, a mailto: or an e-mail address`);
  const host = out.startsWith('mailto:') ? out.slice(out.indexOf('@') + 1) : new URL(out).hostname;
  if (/^(localhost|127\.\d+\.\d+\.\d+|\[?::1\]?)$/i.test(host) || host.endsWith('.localhost')) {
    throw new VapidSubjectError(`invalid --webpush-subject "${subject}": push services reject localhost subjects`);
  }
  return out;
}

/** The daemon's VAPID key pair, created on first start and reloaded when `vapid regenerate` rotates it. */
export class VapidKeyHolder {
  private keys!: VapidKeys;
  private version = 0;
  private cancel?: Cancel;

  constructor(private readonly db: Database) {}

  async start(subscriber: Subscriber, onChange: () => void): Promise<void> {
    await this.load();
    this.cancel = await subscriber.subscribeWithErr(vapidChangeChannel, () => void this.load().then(onChange));
  }

  async close(): Promise<void> {
    await this.cancel?.();
  }

  get current(): VapidKeys {
    return this.keys;
  }

  /** Bumps on each rotation: signed tokens of an older version are stale. */
  get generation(): number {
    return this.version;
  }

  private async load(): Promise<void> {
    let keys = await getVapidKeys(this.db);
    if (!keys) {
      await insertVapidKeysIfAbsent(this.db, webpush.generateVAPIDKeys());
      keys = await getVapidKeys(this.db);
    }
    if (!keys) throw new Error('the VAPID keys could not be stored');
    this.keys = keys;
    this.version++;
  }
}

/** Seconds a signed VAPID token is used for; push services accept up to 24 h. */
const tokenLifetimeSeconds = 12 * 3600;

/**
 * One signed VAPID JWT per push-service origin, renewed at half its life: signing is most of web-push's per-send
 * cost (STACK.md), and a token is valid for every send to that origin.
 */
export class VapidTokenCache {
  private readonly tokens = new Map<string, { header: string; renewAt: number; generation: number }>();

  constructor(
    private readonly keys: Pick<VapidKeyHolder, 'current' | 'generation'>,
    private readonly subject: string,
    private readonly now: () => number = Date.now,
  ) {}

  authorization(endpoint: string): string {
    const origin = new URL(endpoint).origin;
    const now = this.now();
    const cached = this.tokens.get(origin);
    if (cached && cached.renewAt > now && cached.generation === this.keys.generation) return cached.header;
    const { publicKey, privateKey } = this.keys.current;
    const exp = Math.floor(now / 1000) + tokenLifetimeSeconds;
    const headers = webpush.getVapidHeaders(origin, this.subject, publicKey, privateKey, 'aes128gcm', exp);
    const header = headers.Authorization as string;
    this.tokens.set(origin, { header, renewAt: now + (tokenLifetimeSeconds * 1000) / 2, generation: this.keys.generation });
    return header;
  }
}

/** Current public key and the subscriptions a rotation would delete (for the confirmation prompt). */
export async function vapidStatus(db: Database): Promise<{ publicKey?: string; subscriptions: number }> {
  const [keys, subscriptions] = await Promise.all([getVapidKeys(db), countWebpushSubscriptions(db)]);
  return { publicKey: keys?.publicKey, subscriptions };
}

/**
 * Rotates the key pair: every subscription is bound to the old key, so they go in the same transaction. Running
 * daemons hear of it only when it commits.
 */
export async function regenerateVapidKeys(db: Database): Promise<{ publicKey: string; deleted: number }> {
  const keys = webpush.generateVAPIDKeys();
  const deleted = await db.tx(async (tx) => {
    const n = await deleteAllWebpushSubscriptions(tx);
    await upsertVapidKeys(tx, keys);
    await notifyVapidChange(tx);
    return n;
  });
  return { publicKey: keys.publicKey, deleted };
}
