import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** A provider key cannot be stored or read: no key given to the daemon, or the stored key was sealed with another one. */
export class SecretKeyError extends Error {}

const version = 1;
const digestBytes = 4;
const ivBytes = 12;
const tagBytes = 16;

/**
 * Seals provider API keys at rest with AES-256-GCM under a 32-byte key from the environment
 * (`CODER_LITE_ENCRYPTION_KEY`, base64), as Coder seals external tokens with `--external-token-encryption-keys`.
 * Layout: version (1) | first 4 bytes of SHA-256(key) | iv (12) | tag (16) | ciphertext; the digest tells "sealed with
 * another key" apart from "tampered with".
 */
export class SecretBox {
  private readonly key: Buffer;
  private readonly digest: Buffer;

  constructor(base64Key: string) {
    const key = Buffer.from(base64Key.trim(), 'base64');
    if (key.length !== 32) throw new SecretKeyError(`the encryption key must be 32 bytes, base64-encoded (got ${key.length} bytes); make one with: openssl rand -base64 32`);
    this.key = key;
    this.digest = createHash('sha256').update(key).digest().subarray(0, digestBytes);
  }

  seal(plain: string): Buffer {
    const iv = randomBytes(ivBytes);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([version]), this.digest, iv, cipher.getAuthTag(), body]);
  }

  open(sealed: Buffer): string {
    if (sealed[0] !== version || !sealed.subarray(1, 1 + digestBytes).equals(this.digest)) {
      throw new SecretKeyError('a provider API key was sealed with another encryption key');
    }
    const at = 1 + digestBytes;
    const decipher = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(at, at + ivBytes));
    decipher.setAuthTag(sealed.subarray(at + ivBytes, at + ivBytes + tagBytes));
    return Buffer.concat([decipher.update(sealed.subarray(at + ivBytes + tagBytes)), decipher.final()]).toString('utf8');
  }
}
