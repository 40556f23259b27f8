import webpush from 'web-push';

/** RFC 8030 §5.3. */
export type Urgency = 'very-low' | 'low' | 'normal' | 'high';

/** One notification to encrypt for one subscription (RFC 8291 aes128gcm). */
export interface EncryptRequest {
  endpoint: string;
  authKey: string;
  p256dhKey: string;
  payload: Uint8Array;
  ttlSeconds: number;
  urgency: Urgency;
  topic?: string;
}

/** The request to send, less its Authorization (the VAPID token is signed once per origin, on the main thread). */
export interface EncryptedPush {
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Where encryption runs: inline on the calling thread, or on a pool of worker threads. */
export interface PushEncryptor {
  encrypt(req: EncryptRequest): Promise<EncryptedPush>;
  /** OS thread ids of the threads it runs on besides the caller's (their CPU time is the daemon's too). */
  threadIds(): number[];
  close(): Promise<void>;
}

/** A fresh ECDH key pair, the shared secret, HKDF and AES-GCM: ~0.25 ms of CPU per notification. */
export function encryptPush(req: EncryptRequest): EncryptedPush {
  const details = webpush.generateRequestDetails({ endpoint: req.endpoint, keys: { auth: req.authKey, p256dh: req.p256dhKey } }, Buffer.from(req.payload), {
    TTL: req.ttlSeconds,
    urgency: req.urgency,
    ...(req.topic ? { topic: req.topic } : {}),
    vapidDetails: null as never,
  });
  const headers = Object.fromEntries(Object.entries(details.headers as Record<string, string | number>).map(([k, v]) => [k, String(v)]));
  return { headers, body: details.body as Buffer };
}

export const inlineEncryptor: PushEncryptor = {
  encrypt: async (req) => encryptPush(req),
  threadIds: () => [],
  close: async () => {},
};
