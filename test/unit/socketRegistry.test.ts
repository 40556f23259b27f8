import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WebSocket, WebSocketServer } from 'ws';

import { SocketRegistry } from '../../src/daemon/http/sockets.js';

/** A socket that records how it was closed, and a server that hands sockets over as `ws` does. */
function fakes() {
  const wss = new EventEmitter();
  const registry = new SocketRegistry();
  registry.attach(wss as unknown as WebSocketServer);
  const open = (userId: string, keyId: string, expiresAt = new Date(Date.now() + 3600_000)) => {
    const raw = {} as IncomingMessage;
    registry.noteRequest(raw, userId, keyId, expiresAt);
    const emitter = new EventEmitter();
    const ws = Object.assign(emitter, {
      closedWith: undefined as number | undefined,
      close(code: number) {
        ws.closedWith = code;
        emitter.emit('close');
      },
    });
    return { raw, ws, connect: () => wss.emit('connection', ws as unknown as WebSocket, raw) };
  };
  return { registry, open };
}

afterEach(() => vi.useRealTimers());

describe('SocketRegistry', () => {
  it('closes the sockets of a revoked key or user with 1008, and no others', () => {
    const { registry, open } = fakes();
    const a1 = open('ua', 'k1');
    const a2 = open('ua', 'k2');
    const b = open('ub', 'k3');
    for (const s of [a1, a2, b]) s.connect();
    expect(registry.revoke({ keyId: 'k1' })).toBe(1);
    expect([a1.ws.closedWith, a2.ws.closedWith, b.ws.closedWith]).toEqual([1008, undefined, undefined]);
    expect(registry.revoke({ userId: 'ua' })).toBe(1);
    expect(a2.ws.closedWith).toBe(1008);
    expect(b.ws.closedWith).toBeUndefined();
    expect(registry.keys()).toEqual(['k3']);
  });

  it('closes a socket whose upgrade completes after its key was revoked', () => {
    const { registry, open } = fakes();
    const s = open('ua', 'k1');
    registry.revoke({ keyId: 'k1' });
    s.connect();
    expect(s.ws.closedWith).toBe(1008);
    expect(registry.size).toBe(0);
  });

  it("closes a socket when its key expires", () => {
    vi.useFakeTimers();
    const { registry, open } = fakes();
    const s = open('ua', 'k1', new Date(Date.now() + 60_000));
    s.connect();
    vi.advanceTimersByTime(59_999);
    expect(s.ws.closedWith).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(s.ws.closedWith).toBe(1008);
    expect(registry.size).toBe(0);
  });
});
