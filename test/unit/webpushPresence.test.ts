import { EventEmitter } from 'node:events';

import { afterEach, describe, expect, it } from 'vitest';

import { silentLogger } from '../../src/daemon/observability/logger.js';
import { createMemoryPubsub } from '../../src/daemon/pubsub/memory.js';
import { droppedMessages, type Pubsub } from '../../src/daemon/pubsub/pubsub.js';
import { presenceChannel, PresenceTracker } from '../../src/daemon/webpush/presence.js';

const chat = '5b1f2c9e-0d7a-4f43-9a51-3c2f1e8b7d60';
const owner = 'owner-1';

/** A chat stream's socket as the tracker sees it: text frames in, then close. */
class FakeSocket extends EventEmitter {
  say(value: unknown) {
    this.emit('message', Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), false);
  }
}

describe('presence', () => {
  let now = 1_000_000;
  const clock = () => now;
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  async function replica(pubsub: Pubsub) {
    const t = new PresenceTracker({ logger: silentLogger(), now: clock, ttlMs: 30_000 });
    await t.start(pubsub);
    cleanups.push(() => t.close());
    return t;
  }

  /** Waits for the memory pubsub to deliver what was published before. */
  const delivered = async (pubsub: Pubsub) => {
    const seen = new Promise<void>((resolve) => void pubsub.subscribe('presence-test-barrier', () => resolve()));
    await pubsub.publish('presence-test-barrier', 'x');
    await seen;
  };

  it('is known on every replica while watching, and ends on "not watching" and on close', async () => {
    const pubsub = createMemoryPubsub();
    cleanups.push(() => pubsub.close());
    const a = await replica(pubsub);
    const b = await replica(pubsub);
    const socket = new FakeSocket();
    a.attach(socket, chat, owner);
    expect(a.isWatching(chat, owner)).toBe(false);

    socket.say({ type: 'presence', watching: true });
    await delivered(pubsub);
    expect([a.isWatching(chat, owner), b.isWatching(chat, owner)]).toEqual([true, true]);
    // Another user's presence on the same chat says nothing about the owner.
    expect(b.isWatching(chat, 'someone-else')).toBe(false);

    socket.say({ type: 'presence', watching: false });
    await delivered(pubsub);
    expect([a.isWatching(chat, owner), b.isWatching(chat, owner)]).toEqual([false, false]);

    socket.say({ type: 'presence', watching: true });
    await delivered(pubsub);
    expect(b.isWatching(chat, owner)).toBe(true);
    socket.emit('close');
    await delivered(pubsub);
    expect([a.isWatching(chat, owner), b.isWatching(chat, owner)]).toEqual([false, false]);
  });

  it('expires by itself without refreshes, here and elsewhere; refreshes keep it', async () => {
    const pubsub = createMemoryPubsub();
    cleanups.push(() => pubsub.close());
    const a = await replica(pubsub);
    const b = await replica(pubsub);
    const socket = new FakeSocket();
    a.attach(socket, chat, owner);
    socket.say({ type: 'presence', watching: true });
    await delivered(pubsub);
    for (let i = 0; i < 6; i++) {
      now += 10_000;
      socket.say({ type: 'presence', watching: true });
      await delivered(pubsub);
      expect([a.isWatching(chat, owner), b.isWatching(chat, owner)], `refresh ${i}`).toEqual([true, true]);
    }
    now += 30_000;
    expect([a.isWatching(chat, owner), b.isWatching(chat, owner)]).toEqual([false, false]);
  });

  it('throttles refresh announcements to one per third of the TTL', async () => {
    const pubsub = createMemoryPubsub();
    cleanups.push(() => pubsub.close());
    const announcements: string[] = [];
    cleanups.push(await pubsub.subscribe(presenceChannel, (p) => void announcements.push(p.toString())));
    const a = await replica(pubsub);
    const socket = new FakeSocket();
    a.attach(socket, chat, owner);
    for (let i = 0; i < 10; i++) {
      socket.say({ type: 'presence', watching: true });
      now += 1_000;
    }
    await delivered(pubsub);
    expect(announcements).toHaveLength(1);
    now += 10_000;
    socket.say({ type: 'presence', watching: true });
    await delivered(pubsub);
    expect(announcements).toHaveLength(2);
  });

  it('forgets other replicas’ viewers when pubsub lost messages, keeps its own', async () => {
    const pubsub = createMemoryPubsub();
    cleanups.push(() => pubsub.close());
    let lose!: () => void;
    const fake: Pubsub = {
      ...pubsub,
      publish: (e, p) => pubsub.publish(e, p),
      subscribe: (e, l) => pubsub.subscribe(e, l),
      subscribeWithErr: (e, l) => {
        lose = () => void l(undefined, droppedMessages);
        return pubsub.subscribeWithErr(e, l);
      },
    };
    const a = await replica(pubsub);
    const b = await replica(fake);
    const there = new FakeSocket();
    const here = new FakeSocket();
    a.attach(there, chat, owner);
    b.attach(here, 'other-chat', owner);
    there.say({ type: 'presence', watching: true });
    here.say({ type: 'presence', watching: true });
    await delivered(pubsub);
    expect(b.isWatching(chat, owner)).toBe(true);
    lose();
    expect(b.isWatching(chat, owner)).toBe(false);
    expect(b.isWatching('other-chat', owner)).toBe(true);
  });

  it('ignores anything that is not a small presence message', async () => {
    const pubsub = createMemoryPubsub();
    cleanups.push(() => pubsub.close());
    const a = await replica(pubsub);
    const socket = new FakeSocket();
    a.attach(socket, chat, owner);
    socket.say('not json');
    socket.say({ type: 'presence', watching: 'yes' });
    socket.say({ type: 'other', watching: true });
    socket.say({ type: 'presence', watching: true, pad: 'x'.repeat(300) });
    socket.emit('message', Buffer.from(JSON.stringify({ type: 'presence', watching: true })), true);
    expect(a.isWatching(chat, owner)).toBe(false);
  });
});
