import { readlinkSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

import { encryptPush, type EncryptRequest } from './encrypt.js';

// The script of one EncryptPool thread: encrypts what the main thread sends, answers in kind.

export interface ToEncryptThread {
  id: number;
  req: EncryptRequest;
}

export type FromEncryptThread =
  | { type: 'ready'; tid?: number }
  | { type: 'done'; id: number; headers: Record<string, string>; body: Uint8Array }
  | { type: 'failed'; id: number; message: string };

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
port.on('message', ({ id, req }: ToEncryptThread) => {
  try {
    const { headers, body } = encryptPush(req);
    // An exact copy, moved rather than cloned (the encrypted body is a view into a shared slab too).
    const own = new Uint8Array(body);
    port.postMessage({ type: 'done', id, headers, body: own } satisfies FromEncryptThread, [own.buffer]);
  } catch (err) {
    port.postMessage({ type: 'failed', id, message: (err as Error).message } satisfies FromEncryptThread);
  }
});
