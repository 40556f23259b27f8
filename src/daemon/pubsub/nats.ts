import { readFileSync } from 'node:fs';

import { connect, credsAuthenticator, type NatsConnection, type Status, type Subscription } from '@nats-io/transport-node';
import type { Registry } from 'prom-client';

import type { Logger } from '../observability/logger.js';
import { startLatencyProbe, type LatencyProbe } from './latency.js';
import { createPubsubMetrics } from './metrics.js';
import { ErrPubsubClosed, validateChannel, validatePayload, type Listener, type Pubsub } from './pubsub.js';
import { withoutErr } from './queue.js';
import { SubscriptionRegistry, type Channel } from './subscriptions.js';

/** Where to reach NATS and as whom. Credentials never appear in `servers` (those are safe to log). */
export interface NatsTarget {
  /** `nats://host:port` (or `tls://`), credentials removed. */
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
  /** A `.creds` file (user JWT and NKey seed). */
  credsFile?: string;
}

/**
 * Parses `--nats-url`: one or more comma-separated `nats://` or `tls://` URLs. Credentials in a URL
 * (`nats://user:pass@host` or `nats://token@host`) are taken out of it, because the client sends them from its
 * options, and so that the server list can be logged. Throws an Error naming the bad URL (without its credentials).
 */
export function parseNatsUrls(value: string, auth: { token?: string; credsFile?: string } = {}): NatsTarget {
  const target: NatsTarget = { servers: [], ...auth };
  for (const raw of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new Error(`"${raw.replace(/\/\/[^@/]*@/, '//…@')}" is not a URL (expected nats://host:port)`);
    }
    if (url.protocol !== 'nats:' && url.protocol !== 'tls:') throw new Error(`the scheme must be nats:// or tls:// (got ${url.protocol}//)`);
    if (!url.hostname) throw new Error('a NATS URL needs a host');
    if (url.username && url.password) {
      target.user = decodeURIComponent(url.username);
      target.pass = decodeURIComponent(url.password);
    } else if (url.username) {
      target.token ??= decodeURIComponent(url.username);
    }
    target.servers.push(`${url.protocol}//${url.host}`);
  }
  if (target.servers.length === 0) throw new Error('expected at least one nats://host:port');
  return target;
}

const plainToken = /^[A-Za-z0-9_:-]+$/;

/** Subjects this prefix's channels live under, so deployments (or tests) can share one NATS. */
export const defaultSubjectPrefix = 'coderlite';

/**
 * A channel as one subject token under the prefix. Everything outside `[A-Za-z0-9_:-]` is percent-encoded (UTF-8
 * bytes), `%` included: `.` would split tokens, `*` and `>` are wildcards, whitespace is a protocol separator. The
 * mapping is injective, so two channels never share a subject.
 */
export function channelSubject(prefix: string, event: string): string {
  // Most channels (chat:stream:<uuid>, pubsub_watchdog) need no escaping: one test instead of one per byte.
  if (plainToken.test(event)) return `${prefix}.${event}`;
  let token = '';
  for (const byte of Buffer.from(event, 'utf8')) {
    const c = String.fromCharCode(byte);
    token += /[A-Za-z0-9_:-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return `${prefix}.${token}`;
}

export interface NatsPubsubOptions {
  target: NatsTarget;
  logger: Logger;
  /** Where the `coder_nats_pubsub_*` metrics are registered. */
  registry?: Registry;
  /** Subject prefix (one or more tokens). Default `coderlite`. */
  subjectPrefix?: string;
  /** Wait between reconnect attempts (the client adds jitter). Default 1 s. */
  reconnectTimeWaitMs?: number;
  /** Background latency probe period; 0 turns it off. Default 10 s. */
  latencyIntervalMs?: number;
  /** Told when the connection is lost and when it is back with every subject subscribed again. */
  onConnectionChange?: (connected: boolean, err?: Error) => void;
}

export interface NatsPubsub extends Pubsub {
  /** True while connected with every subject subscribed. */
  readonly connected: boolean;
}

/** A publish while the connection is down: it was not sent. Subscribers learn of the gap from the drop signal. */
export class NatsDisconnectedError extends Error {
  constructor() {
    super('pubsub: not connected to NATS; the message was not sent');
    this.name = 'NatsDisconnectedError';
  }
}

/** A publish is done once the client has it: one settled promise serves them all. */
const published = Promise.resolve();

/** NATS's own default; the server's figure replaces it once connected. */
const defaultMaxPayload = 1024 * 1024;

/**
 * Core NATS pubsub (no JetStream), as Coder's `coderd/x/nats`: one client subscription per subject shared by the
 * local listeners through the registry, each with its own queue. Core NATS is at-most-once and never says it lost
 * something, so the drop signal comes from here: on a full queue, and after every reconnect (before any message
 * that came after it). A slow consumer is cut off by the server, which is a disconnect like any other.
 */
export async function createNatsPubsub(opts: NatsPubsubOptions): Promise<NatsPubsub> {
  const { logger, target } = opts;
  const metrics = createPubsubMetrics(opts.registry, 'coder_nats_pubsub');
  const prefix = opts.subjectPrefix ?? defaultSubjectPrefix;
  let conn: NatsConnection;
  try {
    conn = await connect({
      servers: target.servers,
      name: 'coder-lite pubsub',
      user: target.user,
      pass: target.pass,
      token: target.token,
      authenticator: target.credsFile ? credsAuthenticator(readFileSync(target.credsFile)) : undefined,
      // Like the LISTEN connection: keep trying, whatever the outage; the watchdog reports a pubsub that never recovers.
      maxReconnectAttempts: -1,
      reconnectTimeWait: opts.reconnectTimeWaitMs ?? 1000,
      ignoreAuthErrorAbort: true,
    });
  } catch (err) {
    throw new Error(`pubsub: cannot connect to NATS at ${target.servers.join(',')}`, { cause: err });
  }

  let connected = true;
  let closing: Promise<void> | undefined;
  let probe: LatencyProbe | undefined;
  metrics.connected.set(1);

  const setConnected = (value: boolean, err?: Error) => {
    if (connected === value) return;
    connected = value;
    metrics.connected.set(value ? 1 : 0);
    opts.onConnectionChange?.(value, err);
  };

  async function sync(ch: Channel<Subscription>): Promise<void> {
    const want = ch.queues.size > 0;
    if (want && ch.handle === undefined) {
      const event = ch.event;
      const sub = conn.subscribe(channelSubject(prefix, event), {
        callback: (err, msg) => {
          if (err) logger.error({ err, event }, 'pubsub: NATS ended a subscription');
          // A view of the socket's chunk, never reused by the client: no copy needed.
          else subscriptions.receive(event, Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
        },
      });
      ch.handle = sub;
      // The server has the SUB once our PING is answered, so a publish after subscribe resolves cannot overtake it.
      // While disconnected (or if the connection drops before the PONG, which rejects the flush) the client resends
      // the SUB on reconnect, and the reconnect's drop signal covers the gap.
      if (connected) await conn.flush().catch(() => undefined);
      // A refusal (a permissions violation) arrives before the PONG and closes the subscription.
      if (sub.isClosed()) {
        ch.handle = undefined;
        throw new Error(`pubsub: NATS refused the subscription to ${sub.getSubject()}`);
      }
    } else if (!want && ch.handle !== undefined) {
      const sub = ch.handle;
      ch.handle = undefined;
      if (!conn.isClosed()) sub.unsubscribe();
    }
  }

  const subscriptions = new SubscriptionRegistry<Subscription>({ logger, metrics, isClosed: () => closing !== undefined, sync });

  async function resubscribed(): Promise<void> {
    try {
      // The client resent every SUB before reporting the reconnect; the PONG says the server has them all.
      await conn.flush();
    } catch (err) {
      // Gone again: the next reconnect releases what is held.
      logger.warn({ err }, 'pubsub: NATS connection lost again while resubscribing');
      return;
    }
    if (closing) return;
    subscriptions.release();
    setConnected(true);
    logger.info({ server: conn.getServer(), channels: subscriptions.all().length }, 'pubsub reconnected to NATS');
  }

  function onStatus(s: Status): void {
    switch (s.type) {
      case 'disconnect':
        if (closing || !connected) return;
        metrics.disconnections.inc();
        // Nothing reaches the queues until the server has every SUB again and the drop signal is in.
        subscriptions.hold();
        logger.warn({ server: s.server }, 'pubsub lost its NATS connection; reconnecting');
        setConnected(false, new Error(`NATS connection to ${s.server} lost`));
        return;
      case 'reconnect':
        if (!closing) void resubscribed();
        return;
      case 'error':
        logger.error({ err: s.error }, 'pubsub: NATS reported an error');
        return;
      case 'ldm':
        logger.info({ server: s.server }, 'pubsub: the NATS server is shutting down (lame duck); the client will move');
        return;
      default:
        return;
    }
  }

  const statusLoop = (async () => {
    for await (const s of conn.status()) onStatus(s);
  })();
  void conn.closed().then((err) => {
    if (err && !closing) logger.error({ err }, 'pubsub: the NATS connection closed for good');
  });

  const pubsub: NatsPubsub = {
    get connected() {
      return connected;
    },
    // Not async: at NATS's rates a second promise per publish is a measurable share of the cost.
    publish(event, payload) {
      let buf: Buffer;
      try {
        if (closing) throw new ErrPubsubClosed();
        validateChannel(event);
        buf = validatePayload(payload, conn.info?.max_payload ?? defaultMaxPayload);
        // The client discards what it buffered while disconnected when it reconnects: say so instead of resolving.
        if (!connected) throw new NatsDisconnectedError();
        // Buffered by the client and written to the socket in order.
        conn.publish(channelSubject(prefix, event), buf);
      } catch (err) {
        metrics.publishes.inc({ success: 'false' });
        return Promise.reject(err);
      }
      metrics.publishes.inc({ success: 'true' });
      metrics.publishedBytes.inc(buf.length);
      return published;
    },
    subscribe: (event: string, listener: Listener) => subscriptions.subscribe(event, withoutErr(listener)),
    subscribeWithErr: (event, listener) => subscriptions.subscribe(event, listener),
    close() {
      return (closing ??= (async () => {
        await probe?.stop();
        // What was published is on the server once this returns, and its echoes are in the local queues.
        if (connected) await conn.flush().catch(() => undefined);
        subscriptions.close();
        connected = false;
        metrics.connected.set(0);
        await conn.close().catch(() => undefined);
        await statusLoop.catch(() => undefined);
      })());
    },
  };

  if ((opts.latencyIntervalMs ?? 10_000) > 0) {
    probe = startLatencyProbe({ pubsub, metrics, logger, intervalMs: opts.latencyIntervalMs });
  }
  return pubsub;
}
