import { describe, expect, it, vi } from 'vitest';

import { closeTooSlow, frameSender, maxEventsPerFrame } from '../../src/daemon/http/routes/stream.js';

function fakeSocket() {
  const sent: string[] = [];
  return {
    OPEN: 1,
    readyState: 1,
    bufferedAmount: 0,
    sent,
    send: vi.fn((data: string) => sent.push(data)),
    close: vi.fn(function (this: { readyState: number }) {
      this.readyState = 2;
    }),
    terminate: vi.fn(),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('frameSender', () => {
  it('coalesces one tick of events into frames of at most 256', async () => {
    const socket = fakeSocket();
    const send = frameSender(socket as never, 1024, () => undefined);
    send(Array.from({ length: 500 }, (_, i) => ({ type: 'message_part', text: String(i) })));
    for (let i = 500; i < 600; i++) send([{ type: 'message_part', text: String(i) }]);
    expect(socket.sent).toHaveLength(0);
    await tick();
    const frames = socket.sent.map((s) => JSON.parse(s) as unknown[]);
    expect(frames.map((f) => f.length)).toEqual([maxEventsPerFrame, maxEventsPerFrame, 600 - 2 * maxEventsPerFrame]);
  });

  it('closes with 1013 and stops sending once the unsent backlog passes the bound', async () => {
    const socket = fakeSocket();
    const overflow = vi.fn();
    const send = frameSender(socket as never, 1000, overflow);
    send([{ type: 'status' }]);
    await tick();
    expect(socket.close).not.toHaveBeenCalled();
    socket.bufferedAmount = 1001;
    send([{ type: 'message_part', text: 'x' }]);
    await tick();
    expect(overflow).toHaveBeenCalledOnce();
    expect(socket.close).toHaveBeenCalledWith(closeTooSlow, expect.stringMatching(/too slow/));
    send([{ type: 'message_part', text: 'y' }]);
    await tick();
    expect(socket.send).toHaveBeenCalledTimes(2);
  });
});
