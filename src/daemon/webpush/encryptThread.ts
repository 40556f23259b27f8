import { readlink } from 'node:fs/promises';
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
// Linux names this thread's own /proc entry: the daemon reads its CPU time there. Told first; requests wait queued.
const link = await readlink('/proc/thread-self').catch(() => undefined);
const tid = link ? Number(link.split('/').at(-1)) : undefined;
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
