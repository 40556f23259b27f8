import type { IncomingMessage } from 'node:http';

import type { WebSocket, WebSocketServer } from 'ws';

import type { Revocation } from '../users/apiKeyCache.js';

/** RFC 6455 1008: policy violation; the credential the socket was opened with no longer holds. */
const closePolicy = 1008;

interface Owner {
  userId: string;
  keyId: string;
  /** The key's expiry: the socket closes then, as the next request would be refused. */
  expiresAt: Date;
  /** The revocation count when the request was authenticated: one arriving before the upgrade completes still counts. */
  seq: number;
}

/** Revocations remembered for sockets still upgrading (a few milliseconds); far more than ever arrive meanwhile. */
const recentRevocations = 1000;
/** setTimeout's longest delay (about 24.8 days); a later expiry re-arms. */
const maxTimerMs = 2 ** 31 - 1;

/**
 * Every open WebSocket of the authenticated routes by the key and user that opened it, so a revoked key, a deleted
 * or a suspended user loses its sockets on every replica the moment the revocation arrives. The auth hook notes
 * each request; the socket is registered when the WebSocket server hands it over, so the routes need no change.
 */
export class SocketRegistry {
  private readonly owners = new Map<WebSocket, Owner>();
  private readonly pending = new WeakMap<IncomingMessage, Owner>();
  private readonly recent: Array<{ seq: number; r: Revocation }> = [];
  private seq = 0;

  /** Called by the auth hook for every authenticated request; only upgrades become sockets. */
  noteRequest(raw: IncomingMessage, userId: string, keyId: string, expiresAt: Date): void {
    this.pending.set(raw, { userId, keyId, expiresAt, seq: this.seq });
  }

  attach(wss: WebSocketServer): void {
    wss.on('connection', (ws: WebSocket, raw: IncomingMessage) => {
      const owner = this.pending.get(raw);
      if (!owner) return;
      if (this.recent.some((x) => x.seq > owner.seq && matches(x.r, owner))) {
        ws.close(closePolicy, 'credentials revoked');
        return;
      }
      this.owners.set(ws, owner);
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        const left = owner.expiresAt.getTime() - Date.now();
        if (left > 0) timer = setTimeout(arm, Math.min(left, maxTimerMs)).unref();
        else if (this.owners.delete(ws)) ws.close(closePolicy, 'token expired');
      };
      arm();
      ws.once('close', () => {
        clearTimeout(timer);
        this.owners.delete(ws);
      });
    });
  }

  get size(): number {
    return this.owners.size;
  }

  /** Distinct keys of the open sockets (to re-check them after lost revocations). */
  keys(): string[] {
    return [...new Set([...this.owners.values()].map((o) => o.keyId))];
  }

  /** Closes the sockets of a revoked key or user with 1008. `all` closes nothing: see `keys()`. */
  revoke(r: Revocation): number {
    this.recent.push({ seq: ++this.seq, r });
    if (this.recent.length > recentRevocations) this.recent.shift();
    if (r === 'all') return 0;
    let closed = 0;
    for (const [ws, owner] of this.owners) {
      if (!matches(r, owner)) continue;
      this.owners.delete(ws);
      ws.close(closePolicy, 'credentials revoked');
      closed++;
    }
    return closed;
  }
}

const matches = (r: Revocation, o: Owner) => r !== 'all' && ('keyId' in r ? r.keyId === o.keyId : r.userId === o.userId);
