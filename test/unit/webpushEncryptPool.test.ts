import { createECDH, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import type { EncryptRequest } from '../../src/daemon/webpush/encrypt.js';
import { EncryptPool } from '../../src/daemon/webpush/encryptPool.js';
import { threadsCpuSeconds } from '../../src/scaletest/cpu.js';

function request(): EncryptRequest {
  const ua = createECDH('prime256v1');
  ua.generateKeys();
  return {
    endpoint: 'https://push.example.com/send/1',
    authKey: randomBytes(16).toString('base64url'),
    p256dhKey: ua.getPublicKey().toString('base64url'),
    payload: Buffer.from('{"web_push":8030}'),
    ttlSeconds: 60,
    urgency: 'high',
  };
}

describe('push encryption pool', () => {
  it('encrypts on its threads, whose OS ids carry the CPU time it spends', async () => {
    const threadsBefore = process.platform === 'linux' ? new Set(readdirSync('/proc/self/task').map(Number)) : new Set<number>();
    const pool = new EncryptPool(2);
    try {
      const req = request();
      const out = await pool.encrypt(req);
      // aes128gcm: an 86-byte header, the padded plaintext and a 16-byte tag.
      expect(out.body.length).toBe(86 + req.payload.length + 1 + 16);
      expect(out.headers).toMatchObject({ 'Content-Encoding': 'aes128gcm', TTL: '60', Urgency: 'high' });
      if (process.platform !== 'linux') return;
      await expect.poll(() => pool.threadIds()).toHaveLength(2);
      // Threads the pool started, not one that was there before it (the main thread, libuv's pool, where an async
      // readlink of /proc/thread-self would have run).
      for (const tid of pool.threadIds()) expect(threadsBefore.has(tid), `thread ${tid}`).toBe(false);
      // Encrypt until the kernel has charged those very threads another tick.
      const before = (await threadsCpuSeconds(pool.threadIds()))!;
      while ((await threadsCpuSeconds(pool.threadIds()))! === before) await Promise.all(Array.from({ length: 200 }, () => pool.encrypt(req)));
    } finally {
      await pool.close();
    }
    await expect(pool.encrypt(request())).rejects.toThrow('closed');
  });
});
