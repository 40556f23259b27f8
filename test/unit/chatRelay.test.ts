import { describe, expect, it } from 'vitest';

import type { StreamNotice } from '../../src/daemon/chat/events.js';
import { createChatMetrics } from '../../src/daemon/chat/metrics.js';
import { LocalParts } from '../../src/daemon/chat/parts.js';
import { PartsAssembler, PartsRelay, partsWantChannel, partsWatchChannel } from '../../src/daemon/chat/relay.js';
import { silentLogger } from '../../src/daemon/observability/logger.js';
import { maxPayloadBytes, type Listener, type Publisher, type Subscriber } from '../../src/daemon/pubsub/pubsub.js';

/**
 * A replica's relay with a recording publisher and a subscriber whose listeners the test calls itself: what was
 * published is known the moment it is, so "nothing was published" needs no waiting.
 */
function setup() {
  const listeners = new Map<string, Listener>();
  const subscriber: Subscriber = {
    subscribe: async (channel, listener) => {
      listeners.set(channel, listener);
      return async () => void listeners.delete(channel);
    },
    subscribeWithErr: () => Promise.reject(new Error('not used')),
  };
  const published: Array<{ channel: string; notice: StreamNotice }> = [];
  const publisher: Publisher = { publish: async (channel, payload) => void published.push({ channel, notice: JSON.parse(payload.toString()) as StreamNotice }) };
  const parts = new LocalParts();
  let now = 0;
  const relay = new PartsRelay({ replica: 'a', publisher, subscriber, parts, metrics: createChatMetrics(undefined, async () => ({})), logger: silentLogger(), leaseMs: 30_000, windowMs: 60_000, now: () => now });
  parts.setTap(relay);
  const deliver = (channel: string, message: object) => void listeners.get(channel)!(Buffer.from(JSON.stringify(message)));
  const notices = () => published.filter((p) => p.channel.startsWith('chat:stream:')).map((p) => p.notice);
  return { relay, parts, deliver, notices, advance: (ms: number) => (now += ms) };
}

describe('parts relay', () => {
  it('publishes nothing for a chat no other replica watches, and everything once one does', async () => {
    const { relay, parts, deliver, notices } = setup();
    await relay.start();
    parts.beginTurn('c1', 1);
    parts.publish('c1', 'a');
    parts.finish('c1');
    // Its own announcement is not a watcher.
    deliver(partsWatchChannel, { replica: 'a', chats: ['c1'] });
    parts.publish('c1', 'b');
    parts.finish('c1');
    expect(notices()).toHaveLength(0);
    deliver(partsWatchChannel, { replica: 'b', chats: ['c1'] });
    parts.publish('c1', 'c');
    parts.publish('c1', 'd');
    expect(notices()).toHaveLength(0);
    // One notice for the window, sent when the model is done at the latest.
    parts.finish('c1');
    expect(notices().map((n) => n.parts)).toEqual([{ generation: 1, seq: 3, texts: ['c', 'd'], ts: 0 }]);
  });

  it('stops relaying once a lease runs out without renewal', async () => {
    const { relay, parts, deliver, notices, advance } = setup();
    await relay.start();
    parts.beginTurn('c2', 1);
    deliver(partsWatchChannel, { replica: 'b', chats: ['c2'] });
    advance(30_001);
    parts.publish('c2', 'late');
    parts.finish('c2');
    expect(notices()).toHaveLength(0);
    expect(relay.watching()).toBe(0);
  });

  it('sends a long part in fragments within the payload limit, which the viewer puts back together', async () => {
    const { relay, parts, deliver, notices } = setup();
    await relay.start();
    parts.beginTurn('c3', 4);
    deliver(partsWatchChannel, { replica: 'b', chats: ['c3'] });
    const long = 'é"'.repeat(10_000);
    parts.publish('c3', 'short');
    parts.publish('c3', long);
    parts.publish('c3', 'tail');
    parts.finish('c3');
    expect(notices().length).toBeGreaterThan(3);
    for (const n of notices()) expect(Buffer.byteLength(JSON.stringify(n))).toBeLessThan(maxPayloadBytes);
    const assembler = new PartsAssembler();
    const got: Array<[number, string]> = [];
    for (const n of notices()) {
      const whole = assembler.accept(n.parts!);
      whole?.texts.forEach((t, i) => got.push([whole.seq + i, t]));
    }
    expect(got).toEqual([
      [1, 'short'],
      [2, long],
      [3, 'tail'],
    ]);
  });

  it('answers a request with the parts after its position, ending the catch-up at the newest part', async () => {
    const { relay, parts, deliver, notices } = setup();
    await relay.start();
    parts.beginTurn('c4', 2);
    for (const t of ['p1', 'p2', 'p3']) parts.publish('c4', t);
    deliver(partsWantChannel, { chat: 'c4', generation: 2, after: 1 });
    expect(notices().map((n) => n.parts)).toEqual([{ generation: 2, seq: 2, texts: ['p2', 'p3'], ts: 0, upto: 3 }]);
    // A request for an older run gets the current one from its start; one for a chat not running here, nothing.
    deliver(partsWantChannel, { chat: 'c4', generation: 1, after: 3 });
    expect(notices().at(-1)!.parts).toMatchObject({ generation: 2, seq: 1, texts: ['p1', 'p2', 'p3'], upto: 3 });
    deliver(partsWantChannel, { chat: 'other', generation: 1, after: 0 });
    expect(notices()).toHaveLength(2);
  });
});
