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

describe('frameSender', () => {
  it('splits events into frames of at most 256', () => {
    const socket = fakeSocket();
    const send = frameSender(socket as never, 1024, () => undefined);
    send(Array.from({ length: 600 }, (_, i) => ({ type: 'message_part', text: String(i) })));
    const frames = socket.sent.map((s) => JSON.parse(s) as unknown[]);
    expect(frames.map((f) => f.length)).toEqual([maxEventsPerFrame, maxEventsPerFrame, 600 - 2 * maxEventsPerFrame]);
  });

  it('closes with 1013 and stops sending once the unsent backlog passes the bound', () => {
    const socket = fakeSocket();
    const overflow = vi.fn();
    const send = frameSender(socket as never, 1000, overflow);
    send([{ type: 'status' }]);
    expect(socket.close).not.toHaveBeenCalled();
    socket.bufferedAmount = 1001;
    send([{ type: 'message_part', text: 'x' }]);
    expect(overflow).toHaveBeenCalledOnce();
    expect(socket.close).toHaveBeenCalledWith(closeTooSlow, expect.stringMatching(/too slow/));
    send([{ type: 'message_part', text: 'y' }]);
    expect(socket.send).toHaveBeenCalledTimes(2);
  });
});
