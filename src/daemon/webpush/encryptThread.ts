import { readlinkSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

import { encryptPush, type EncryptRequest } from './encrypt.js';

// The script of one EncryptPool thread: encrypts what the main thread sends, answers in kind.

/** The requests of one event-loop turn, in one message: a message costs each side a wake-up and a clone. */
export interface ToEncryptThread {
  jobs: Array<{ id: number; req: EncryptRequest }>;
}

export type EncryptResult = { id: number; headers: Record<string, string>; body: Uint8Array } | { id: number; failed: string };

export type FromEncryptThread = { type: 'ready'; tid?: number } | { type: 'results'; results: EncryptResult[] };

const port = parentPort!;
// Linux names this thread's own /proc entry: the daemon reads its CPU time there. Synchronously: an async readlink
// runs on a libuv pool thread, whose entry /proc/thread-self would then be.
const tid = (() => {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').at(-1));
  } catch {
    return undefined;
  }
})();
port.postMessage({ type: 'ready', tid: Number.isInteger(tid) ? tid : undefined } satisfies FromEncryptThread);
port.on('message', ({ jobs }: ToEncryptThread) => {
  const results: EncryptResult[] = [];
  const moved: ArrayBuffer[] = [];
  for (const { id, req } of jobs) {
    try {
      const { headers, body } = encryptPush(req);
      // An exact copy, moved rather than cloned (the encrypted body is a view into a shared slab too).
      const own = new Uint8Array(body);
      results.push({ id, headers, body: own });
      moved.push(own.buffer);
    } catch (err) {
      results.push({ id, failed: (err as Error).message });
    }
  }
  port.postMessage({ type: 'results', results } satisfies FromEncryptThread, moved);
});
