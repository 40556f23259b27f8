import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';

import type { Logger } from '../observability/logger.js';
import type { Cancel, Publisher, Subscriber } from '../pubsub/pubsub.js';

export const presenceChannel = 'webpush:presence';

/** How long a "watching" lasts without a refresh; the console refreshes every 10 s (static/presence.js). */
export const presenceTtlMs = 30_000;

/** What the console sends on its chat stream: `{"type":"presence","watching":true}`. Anything else is ignored. */
const maxMessageBytes = 256;

/** On `webpush:presence`: chat, user, viewer key, watching, and for how long (relative: replicas' clocks differ). */
interface Announcement {
  c: string;
  u: string;
  k: string;
  w: boolean;
  t: number;
}

export interface PresenceOptions {
  logger: Logger;
  ttlMs?: number;
  /** Tests only: a clock of their own. */
  now?: () => number;
}

/** A socket as the tracker uses it: ws's WebSocket is one. */
export type PresenceSocket = Pick<EventEmitter, 'on'>;

/**
 * Who has which chat visible and focused, on every replica: the push after a turn is skipped while the owner
 * watches (Safari revokes push permission after pushes that show nothing, so the decision is the server's and the
 * service worker shows everything). A viewer's "watching" expires by itself unless refreshed, so a replica that dies
 * or a lost announcement never suppresses pushes for long; lost pubsub messages forget other replicas' viewers
 * (a redundant push is shown, which is harmless).
 */
export class PresenceTracker {
  /** `chat user` → viewer key → expiry. */
  private readonly viewers = new Map<string, Map<string, number>>();
  /** Local viewers: when their announcement last went out, for throttling the refreshes. */
  private readonly announced = new Map<string, number>();
  private readonly replicaId = randomUUID();
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly sweepTimer: NodeJS.Timeout;
  private publisher?: Publisher;
  private cancel?: Cancel;
  private seq = 0;

  constructor(private readonly opts: PresenceOptions) {
    this.ttlMs = opts.ttlMs ?? presenceTtlMs;
    this.now = opts.now ?? Date.now;
    this.sweepTimer = setInterval(() => this.sweep(), this.ttlMs).unref();
  }

  async start(pubsub: Publisher & Subscriber): Promise<void> {
    this.publisher = pubsub;
    this.cancel = await pubsub.subscribeWithErr(presenceChannel, (payload, err) => {
      if (err || !payload) return this.forgetRemote();
      let a: Announcement;
      try {
        a = JSON.parse(payload.toString()) as Announcement;
      } catch {
        return;
      }
      if (typeof a.k !== 'string' || a.k.startsWith(`${this.replicaId}/`)) return;
      this.set(a.c, a.u, a.k, a.w, Math.min(Number(a.t) || 0, this.ttlMs));
    });
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.cancel?.();
  }

  /** Listens to a chat stream's socket for the console's presence messages; its close ends the viewer. */
  attach(socket: PresenceSocket, chatId: string, userId: string): void {
    const key = `${this.replicaId}/${++this.seq}`;
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (isBinary || !Buffer.isBuffer(data) || data.length > maxMessageBytes) return;
      let msg: { type?: unknown; watching?: unknown };
      try {
        msg = JSON.parse(data.toString()) as typeof msg;
      } catch {
        return;
      }
      if (msg?.type === 'presence' && typeof msg.watching === 'boolean') this.local(chatId, userId, key, msg.watching);
    });
    socket.on('close', () => this.local(chatId, userId, key, false));
  }

  /** True while some viewer of this user has the chat visible and focused, on any replica. */
  isWatching(chatId: string, userId: string): boolean {
    const viewers = this.viewers.get(`${chatId} ${userId}`);
    if (!viewers) return false;
    const now = this.now();
    for (const expires of viewers.values()) if (expires > now) return true;
    return false;
  }

  private local(chatId: string, userId: string, key: string, watching: boolean): void {
    const was = this.announced.get(key);
    const now = this.now();
    this.set(chatId, userId, key, watching, this.ttlMs);
    if (!watching) {
      if (was === undefined) return;
      this.announced.delete(key);
    } else {
      // Refreshes go out at most every third of the TTL: enough to keep other replicas' copies alive.
      if (was !== undefined && now - was < this.ttlMs / 3) return;
      this.announced.set(key, now);
    }
    const a: Announcement = { c: chatId, u: userId, k: key, w: watching, t: this.ttlMs };
    this.publisher?.publish(presenceChannel, JSON.stringify(a)).catch((err: unknown) => {
      this.opts.logger.warn({ err, chatId }, 'web push: announcing presence failed; other replicas may push while the owner watches');
    });
  }

  private set(chatId: string, userId: string, key: string, watching: boolean, ttlMs: number): void {
    const id = `${chatId} ${userId}`;
    let viewers = this.viewers.get(id);
    if (watching) {
      if (!viewers) this.viewers.set(id, (viewers = new Map()));
      viewers.set(key, this.now() + ttlMs);
    } else if (viewers) {
      viewers.delete(key);
      if (viewers.size === 0) this.viewers.delete(id);
    }
  }

  private forgetRemote(): void {
    for (const [id, viewers] of this.viewers) {
      for (const key of viewers.keys()) if (!key.startsWith(`${this.replicaId}/`)) viewers.delete(key);
      if (viewers.size === 0) this.viewers.delete(id);
    }
  }

  /** Drops expired viewers (a replica that died, a tab that stopped refreshing). */
  private sweep(): void {
    const now = this.now();
    for (const [id, viewers] of this.viewers) {
      for (const [key, expires] of viewers) if (expires <= now) viewers.delete(key);
      if (viewers.size === 0) this.viewers.delete(id);
    }
  }
}
