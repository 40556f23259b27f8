import { createDecipheriv, createECDH, createHmac, createPublicKey, randomBytes, verify, type ECDH } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** A notification the sink accepted: VAPID verified, body decrypted. */
export interface ReceivedPush {
  endpoint: string;
  payload: unknown;
  claims: { aud: string; exp: number; sub: string };
  vapidPublicKey: string;
  ttl: number;
  urgency: string | undefined;
  /** RFC 8030 Topic header. */
  topic: string | undefined;
  /** The notification of a Declarative Web Push payload, as Safari would show it; undefined for any other payload. */
  notification: DeclarativeNotification | undefined;
}

export interface DeclarativeNotification {
  title: string;
  navigate: string;
  body?: string;
  tag?: string;
  icon?: string;
}

/**
 * The notification of a declarative push message (push-api: `web_push` 8030, a `notification` with a `title` and an
 * absolute `navigate` URL), or undefined when the payload is not one and a browser would hand it to the service worker.
 */
export function declarativeNotification(payload: unknown): DeclarativeNotification | undefined {
  const p = payload as { web_push?: unknown; notification?: Record<string, unknown> } | null;
  if (p?.web_push !== 8030 || typeof p.notification !== 'object' || p.notification === null) return undefined;
  const n = p.notification;
  if (typeof n.title !== 'string' || typeof n.navigate !== 'string' || !URL.canParse(n.navigate)) return undefined;
  return n as unknown as DeclarativeNotification;
}

export interface SinkSubscription {
  endpoint: string;
  auth_key: string;
  p256dh_key: string;
}

/**
 * A loopback push service (RFC 8030/8291/8292): verifies each request's VAPID JWT and decrypts its aes128gcm body
 * with the subscription's private key, as a browser's push service and user agent would together. Answers 201, or
 * whatever status a test asks for.
 */
export interface PushSinkServer {
  url: string;
  newSubscription(): SinkSubscription;
  /** Notifications accepted so far. */
  received(): number;
  messages(): ReceivedPush[];
  /** Requests refused (bad JWT, undecryptable body), with the reason. */
  refusals(): string[];
  /** Requests per endpoint, accepted or not. */
  hits(endpoint: string): number;
  /** Answer this status for an endpoint (e.g. 410, 500) instead of 201. */
  respondWith(endpoint: string, status: number): void;
  close(): Promise<void>;
}

const b64u = (b: Buffer) => b.toString('base64url');

/**
 * A subscription as a browser makes one (a P-256 key pair and a 16-byte auth secret), on an endpoint of the sink at
 * `origin`. The endpoint's path carries the private key and secret, so any sink — on any thread — can decrypt what
 * is sent to it without being told about the subscription first. A test harness only: real keys never leave the
 * browser.
 */
export function newSinkSubscription(origin: string): SinkSubscription {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const auth = randomBytes(16);
  // getPrivateKey drops leading zero bytes; the path always holds all 32.
  const key = ecdh.getPrivateKey();
  const privateKey = Buffer.concat([Buffer.alloc(32 - key.length), key]);
  return { endpoint: `${origin}/push/${b64u(privateKey)}.${b64u(auth)}`, auth_key: b64u(auth), p256dh_key: b64u(ecdh.getPublicKey()) };
}

function keysFromPath(path: string): { ecdh: ECDH; auth: Buffer } | undefined {
  const m = /^\/push\/([\w-]{43})\.([\w-]{22})$/.exec(path);
  if (!m) return undefined;
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(Buffer.from(m[1]!, 'base64url'));
  return { ecdh, auth: Buffer.from(m[2]!, 'base64url') };
}

function hmac(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** RFC 8291 §3.4 and RFC 8188: one aes128gcm record. */
export function decryptAes128gcm(body: Buffer, ecdh: ECDH, authSecret: Buffer): Buffer {
  const salt = body.subarray(0, 16);
  const idlen = body[20]!;
  const asPublic = body.subarray(21, 21 + idlen);
  const record = body.subarray(21 + idlen);
  const uaPublic = ecdh.getPublicKey();
  const ecdhSecret = ecdh.computeSecret(asPublic);
  const prkKey = hmac(authSecret, ecdhSecret);
  const ikm = hmac(prkKey, Buffer.concat([Buffer.from('WebPush: info\0'), uaPublic, asPublic, Buffer.from([1])]));
  const prk = hmac(salt, ikm);
  const cek = hmac(prk, Buffer.from('Content-Encoding: aes128gcm\0\x01')).subarray(0, 16);
  const nonce = hmac(prk, Buffer.from('Content-Encoding: nonce\0\x01')).subarray(0, 12);
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error('missing the last-record delimiter');
  return padded.subarray(0, end);
}

/** RFC 8292: `vapid t=<jwt>, k=<key>`; returns the claims or throws with the reason. */
export function verifyVapid(authorization: string | undefined, audience: string, now = Date.now()): { claims: ReceivedPush['claims']; key: string } {
  const m = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+),\s*k=([\w-]+)$/.exec(authorization ?? '');
  if (!m) throw new Error('no vapid Authorization header');
  const [header, payload, signature] = m[1]!.split('.') as [string, string, string];
  const key = Buffer.from(m[2]!, 'base64url');
  if (key.length !== 65 || key[0] !== 4) throw new Error('k is not an uncompressed P-256 key');
  const publicKey = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64u(key.subarray(1, 33)), y: b64u(key.subarray(33)) }, format: 'jwk' });
  if (JSON.parse(Buffer.from(header, 'base64url').toString()).alg !== 'ES256') throw new Error('alg is not ES256');
  const ok = verify('sha256', Buffer.from(`${header}.${payload}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
  if (!ok) throw new Error('bad JWT signature');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as ReceivedPush['claims'];
  if (claims.aud !== audience) throw new Error(`aud ${claims.aud} is not ${audience}`);
  const nowS = now / 1000;
  if (!(claims.exp > nowS && claims.exp <= nowS + 24 * 3600)) throw new Error('exp is not within 24 h');
  if (!/^(mailto:[^:]+@|https:\/\/)/.test(claims.sub ?? '') || /^mailto:mailto:/.test(claims.sub)) throw new Error(`bad sub ${claims.sub}`);
  return { claims, key: m[2]! };
}

/** With `tls`, the sink speaks https (web-push's own sender refuses http endpoints). */
export async function startPushSink(opts: { tls?: { key: string; cert: string }; onReceived?: (count: number) => void } = {}): Promise<PushSinkServer> {
  const statuses = new Map<string, number>();
  const hits = new Map<string, number>();
  const messages: ReceivedPush[] = [];
  const refusals: string[] = [];
  const verifiedTokens = new Map<string, ReturnType<typeof verifyVapid>>();
  const keys = new Map<string, { ecdh: ECDH; auth: Buffer }>();
  let count = 0;
  let origin = '';

  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const endpoint = `${origin}${req.url ?? ''}`;
    hits.set(endpoint, (hits.get(endpoint) ?? 0) + 1);
    let sub = keys.get(req.url ?? '');
    if (!sub) {
      sub = keysFromPath(req.url ?? '');
      if (sub) {
        if (keys.size > 100_000) keys.clear();
        keys.set(req.url!, sub);
      }
    }
    if (req.method !== 'POST' || !sub) return res.writeHead(404).end();
    const forced = statuses.get(endpoint);
    if (forced !== undefined) return res.writeHead(forced).end();
    try {
      // A sender reuses one token per origin for hours (RFC 8292 allows 24 h): verify each distinct token once.
      const authorization = req.headers.authorization ?? '';
      let verified = verifiedTokens.get(authorization);
      if (!verified || verified.claims.exp * 1000 <= Date.now()) {
        verified = verifyVapid(authorization, origin);
        if (verifiedTokens.size > 10_000) verifiedTokens.clear();
        verifiedTokens.set(authorization, verified);
      }
      const { claims, key } = verified;
      if (req.headers['content-encoding'] !== 'aes128gcm') throw new Error('content-encoding is not aes128gcm');
      const payload = JSON.parse(decryptAes128gcm(body, sub.ecdh, sub.auth).toString()) as unknown;
      const topic = req.headers.topic as string | undefined;
      if (topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(topic)) throw new Error(`Topic "${topic}" is not 1 to 32 base64url characters`);
      messages.push({
        endpoint,
        payload,
        claims,
        vapidPublicKey: key,
        ttl: Number(req.headers.ttl),
        urgency: req.headers.urgency as string | undefined,
        topic,
        notification: declarativeNotification(payload),
      });
      count++;
      opts.onReceived?.(count);
      res.writeHead(201).end();
    } catch (err) {
      refusals.push((err as Error).message);
      res.writeHead(403).end((err as Error).message);
    }
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks)));
  };
  const server = opts.tls ? createHttpsServer(opts.tls, onRequest) : createServer(onRequest);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: origin,
    newSubscription: () => newSinkSubscription(origin),
    received: () => count,
    messages: () => messages,
    refusals: () => refusals,
    hits: (endpoint) => hits.get(endpoint) ?? 0,
    respondWith: (endpoint, status) => statuses.set(endpoint, status),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
