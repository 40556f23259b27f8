import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';

import { TailApp } from '../../src/tui/TailApp.js';
import { createTailFeed, toNdjson, type TailEvent, type TailFeed } from '../../src/tui/tailFeed.js';

const msg = (channel: string, payload: string): TailEvent => ({ kind: 'message', time: new Date(2024, 0, 1, 12, 0, 0), channel, payload: Buffer.from(payload) });

/** A feed that also tells how many listeners it has, to see the app let go of it. */
function countedFeed(): TailFeed & { listeners(): number } {
  const feed = createTailFeed();
  let n = 0;
  return {
    push: feed.push,
    onEvent(fn) {
      n++;
      const off = feed.onEvent(fn);
      return () => {
        n--;
        off();
      };
    },
    listeners: () => n,
  };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

describe('TailApp', () => {
  it('lists messages with time, channel, size and a one-line preview, and counts drop signals', async () => {
    const feed = createTailFeed();
    const app = render(<TailApp channels={['alpha', 'beta']} feed={feed} refreshMs={5} color={false} />);
    expect(app.lastFrame()).toContain('waiting for messages');
    feed.push(msg('alpha', 'hello\nworld'));
    feed.push(msg('beta', 'x'.repeat(2048)));
    feed.push({ kind: 'dropped', time: new Date(), channel: 'alpha' });
    await expect.poll(() => app.lastFrame()).toContain('hello world');
    const frame = app.lastFrame()!;
    expect(frame).toMatch(/12:00:00\.000 +alpha +11 B {2}hello world/);
    expect(frame).toMatch(/beta +2\.0 KiB {2}xxxx/);
    expect(frame).toContain('dropped signals: 1');
    expect(frame).toMatch(/alpha +1 msgs/);
    app.unmount();
  });

  it('shows reconnecting… while the connection is down, and live again once it is back', async () => {
    const feed = createTailFeed();
    const app = render(<TailApp channels={['c']} feed={feed} refreshMs={5} color={false} />);
    expect(app.lastFrame()).toContain('● live');
    feed.push({ kind: 'connection', time: new Date(), connected: false, reason: 'Connection terminated unexpectedly' });
    await expect.poll(() => app.lastFrame()).toContain('reconnecting…');
    expect(app.lastFrame()).not.toContain('● live');
    feed.push({ kind: 'connection', time: new Date(), connected: true });
    feed.push({ kind: 'dropped', time: new Date(), channel: 'c' });
    await expect.poll(() => app.lastFrame()).toContain('● live');
    expect(app.lastFrame()).toContain('dropped signals: 1');
    app.unmount();
  });

  it('shows per-channel rates', async () => {
    let now = 0;
    const feed = createTailFeed();
    const app = render(<TailApp channels={['alpha']} feed={feed} refreshMs={5} color={false} now={() => now} />);
    for (let i = 0; i < 30; i++) feed.push(msg('alpha', String(i)));
    now = 2000;
    await expect.poll(() => app.lastFrame()).toMatch(/alpha +30 msgs +15\.0\/s/);
    app.unmount();
  });

  it('freezes the list on space and catches up on the next space', async () => {
    const feed = createTailFeed();
    const app = render(<TailApp channels={['c']} feed={feed} refreshMs={5} color={false} />);
    feed.push(msg('c', 'first'));
    await expect.poll(() => app.lastFrame()).toContain('first');
    app.stdin.write(' ');
    await expect.poll(() => app.lastFrame()).toContain('paused');
    feed.push(msg('c', 'second'));
    // The count moves while the list holds still.
    await expect.poll(() => app.lastFrame()).toMatch(/c +2 msgs/);
    expect(app.lastFrame()).not.toContain('second');
    app.stdin.write(' ');
    await expect.poll(() => app.lastFrame()).toContain('second');
    expect(app.lastFrame()).toContain('live');
    app.unmount();
  });

  it('filters with / and a regex, on screen and for new messages', async () => {
    const feed = createTailFeed();
    const app = render(<TailApp channels={['c']} feed={feed} refreshMs={5} color={false} />);
    feed.push(msg('c', 'apple'));
    feed.push(msg('c', 'banana'));
    await expect.poll(() => app.lastFrame()).toContain('banana');
    app.stdin.write('/');
    await tick();
    for (const ch of '^ap(') {
      app.stdin.write(ch);
      await tick();
    }
    app.stdin.write('\r');
    // An invalid regex is refused and editing continues.
    await expect.poll(() => app.lastFrame()).toMatch(/Invalid regular expression/);
    app.stdin.write('\u007f');
    await tick();
    app.stdin.write('\r');
    await expect.poll(() => app.lastFrame()).toContain('filter: /^ap/');
    expect(app.lastFrame()).not.toContain('banana');
    feed.push(msg('c', 'apricot'));
    feed.push(msg('c', 'cherry'));
    await expect.poll(() => app.lastFrame()).toContain('apricot');
    expect(app.lastFrame()).not.toContain('cherry');
    app.unmount();
  });

  it('quits on q and lets go of the feed', async () => {
    const feed = countedFeed();
    const app = render(<TailApp channels={['c']} feed={feed} refreshMs={5} color={false} />);
    expect(feed.listeners()).toBe(1);
    app.stdin.write('q');
    await expect.poll(() => feed.listeners()).toBe(0);
  });

  it('quits after --max matching messages', async () => {
    const feed = countedFeed();
    const app = render(<TailApp channels={['c']} feed={feed} refreshMs={5} color={false} max={2} initialFilter={/keep/} />);
    feed.push(msg('c', 'keep 1'));
    feed.push(msg('c', 'skip'));
    expect(feed.listeners()).toBe(1);
    feed.push(msg('c', 'keep 2'));
    await expect.poll(() => feed.listeners()).toBe(0);
    // The last drawn frame: under CI=true ink's exit appends an empty one to the test stdout.
    expect(app.frames.findLast((f) => f.trim() !== '')).toContain('keep 2');
  });
});

describe('NDJSON lines', () => {
  it('carry time, channel, size and payload, or a dropped marker', () => {
    const time = new Date('2024-01-01T00:00:00Z');
    expect(toNdjson({ kind: 'message', time, channel: 'c', payload: Buffer.from('{"a":"ü"}') })).toBe(
      '{"time":"2024-01-01T00:00:00.000Z","channel":"c","size":10,"payload":"{\\"a\\":\\"ü\\"}"}\n',
    );
    expect(toNdjson({ kind: 'dropped', time, channel: 'c' })).toBe('{"time":"2024-01-01T00:00:00.000Z","channel":"c","dropped":true}\n');
  });
});
