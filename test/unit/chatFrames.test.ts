import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { closeTooSlow, frameWriter, maxEventsPerFrame } from '../../src/daemon/http/frames.js';

/** A socket whose writes complete only when the test says so (`drain`), like a client that reads when told. */
function fakeSocket() {
  const sent: string[] = [];
  const callbacks: Array<(err?: Error) => void> = [];
  const socket = {
    OPEN: 1,
    readyState: 1,
    bufferedAmount: 0,
    sent,
    send: vi.fn((data: Buffer, opts: { binary: boolean }, cb: (err?: Error) => void) => {
      expect(opts.binary).toBe(false);
      sent.push(data.toString());
      callbacks.push(cb);
    }),
    close: vi.fn(() => {
      socket.readyState = 2;
    }),
    terminate: vi.fn(),
    /** The client read everything: the writes complete. */
    drain() {
      for (const cb of callbacks.splice(0)) cb();
    },
  };
  return socket;
}

const part = (i: number) => ({ type: 'message_part', text: String(i) });
const frames = (s: { sent: string[] }) => s.sent.map((f) => JSON.parse(f) as Array<{ type: string; text?: string }>);

describe('frameWriter', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('sends a status at once and holds parts for the window, in frames of at most 256', async () => {
    const socket = fakeSocket();
    const counted: number[] = [];
    const w = frameWriter(socket, { backlogBytes: 1 << 20, partsWindowMs: 25, onCut: () => undefined, onFrame: (bytes) => counted.push(bytes) });
    for (let i = 0; i < 600; i++) w.send([part(i)]);
    await vi.advanceTimersByTimeAsync(24);
    expect(socket.sent).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(frames(socket).map((f) => f.length)).toEqual([maxEventsPerFrame, maxEventsPerFrame, 600 - 2 * maxEventsPerFrame]);
    expect(frames(socket).flat().map((e) => e.text)).toEqual(Array.from({ length: 600 }, (_, i) => String(i)));

    socket.drain();
    w.send([{ type: 'status' }]);
    await vi.advanceTimersToNextTimerAsync();
    expect(frames(socket).at(-1)).toEqual([{ type: 'status' }]);
    // Every frame handed to the socket is counted, with its bytes (the stream frame metrics).
    expect(counted).toEqual(socket.sent.map((f) => Buffer.byteLength(f)));
  });

  it('ends the parts window early past the bound instead of cutting a client that reads', async () => {
    const socket = fakeSocket();
    const onCut = vi.fn();
    const w = frameWriter(socket, { backlogBytes: 1000, partsWindowMs: 25, onCut });
    for (let i = 0; i < 100; i++) w.send([part(i)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(onCut).not.toHaveBeenCalled();
    expect(frames(socket).flat()).toHaveLength(100);
  });

  it('keeps one batch out: what arrives meanwhile leaves as one frame once the socket has taken it', async () => {
    const socket = fakeSocket();
    const w = frameWriter(socket, { backlogBytes: 1 << 20, onCut: () => undefined });
    w.send([{ type: 'status' }]);
    await vi.advanceTimersToNextTimerAsync();
    expect(socket.send).toHaveBeenCalledTimes(1);
    for (let i = 0; i < 100; i++) w.send([{ type: 'message', id: i }]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(socket.send).toHaveBeenCalledTimes(1);
    socket.drain();
    await vi.advanceTimersToNextTimerAsync();
    expect(socket.send).toHaveBeenCalledTimes(2);
    expect(frames(socket)[1]).toHaveLength(100);
  });

  it('resolves drained once everything queued is written', async () => {
    const socket = fakeSocket();
    const w = frameWriter(socket, { backlogBytes: 1 << 20, onCut: () => undefined });
    await w.drained();
    w.send([{ type: 'status' }]);
    let drained = false;
    void w.drained().then(() => (drained = true));
    await vi.advanceTimersToNextTimerAsync();
    expect(drained).toBe(false);
    socket.drain();
    await vi.advanceTimersByTimeAsync(0);
    expect(drained).toBe(true);
  });

  it('cuts with 1013 before a write that would pass the bound, drops its buffer and terminates after a grace', async () => {
    const socket = fakeSocket();
    const onCut = vi.fn();
    const w = frameWriter(socket, { backlogBytes: 1000, onCut });
    w.send([{ type: 'status' }]);
    await vi.advanceTimersToNextTimerAsync();
    // The client stops reading: nothing completes, the socket holds bytes, our buffer grows until the bound.
    socket.bufferedAmount = 600;
    for (let i = 0; i < 100 && onCut.mock.calls.length === 0; i++) w.send([{ type: 'message', text: 'x'.repeat(20) }]);
    expect(onCut).toHaveBeenCalledOnce();
    expect(socket.close).toHaveBeenCalledWith(closeTooSlow, expect.stringMatching(/too slow/));
    expect(socket.send).toHaveBeenCalledTimes(1);
    let released = false;
    void w.drained().then(() => (released = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(released).toBe(true);
    w.send([{ type: 'message', text: 'after' }]);
    await vi.advanceTimersByTimeAsync(999);
    expect(socket.terminate).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.terminate).toHaveBeenCalledOnce();
    expect(socket.send).toHaveBeenCalledTimes(1);
  });

  it('lets one event larger than the bound reach a client that reads, and what follows it', async () => {
    const socket = fakeSocket();
    const onCut = vi.fn();
    const w = frameWriter(socket, { backlogBytes: 1000, onCut });
    w.send([{ type: 'status' }]);
    await vi.advanceTimersToNextTimerAsync();
    w.send([{ type: 'message', text: 'x'.repeat(5000) }]);
    // The long message is out and not yet taken (the socket still holds it); the status after it waits.
    socket.drain();
    await vi.advanceTimersToNextTimerAsync();
    socket.bufferedAmount = 5000;
    w.send([{ type: 'status', status: 'waiting' }]);
    expect(onCut).not.toHaveBeenCalled();
    socket.bufferedAmount = 0;
    socket.drain();
    await vi.advanceTimersToNextTimerAsync();
    expect(frames(socket).map((f) => f[0]!.type)).toEqual(['status', 'message', 'status']);
  });

  it('releases a waiter when the socket closes', async () => {
    const socket = fakeSocket();
    const w = frameWriter(socket, { backlogBytes: 1 << 20, onCut: () => undefined });
    w.send([{ type: 'status' }]);
    await vi.advanceTimersToNextTimerAsync();
    let released = false;
    void w.drained().then(() => (released = true));
    w.close();
    await vi.advanceTimersByTimeAsync(0);
    expect(released).toBe(true);
  });
});
