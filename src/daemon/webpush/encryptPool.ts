import { Worker } from 'node:worker_threads';

import type { EncryptedPush, EncryptRequest, PushEncryptor } from './encrypt.js';
import type { FromEncryptThread, ToEncryptThread } from './encryptThread.js';

interface Pending {
  resolve(p: EncryptedPush): void;
  reject(err: Error): void;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Requests of this event-loop turn, sent as one message when the turn ends. */
  batch: ToEncryptThread['jobs'];
  tid?: number;
}

/**
 * Push encryption on worker threads, so the main thread's event loop keeps serving streams and queries. Each
 * request goes to the thread with the fewest in flight, and a thread gets the requests of one event-loop turn in one
 * message; a thread that dies fails what it had and is replaced.
 */
export class EncryptPool implements PushEncryptor {
  private readonly threads: Thread[] = [];
  private nextId = 0;
  private closed = false;

  constructor(size: number) {
    for (let i = 0; i < size; i++) this.threads.push(this.spawn());
  }

  private spawn(): Thread {
    const worker = import.meta.url.endsWith('.ts')
      ? // Run from the TypeScript sources (the test runner): the thread registers tsx before loading its module.
        new Worker(`import('tsx/esm/api').then((t) => t.register()).then(() => import(${JSON.stringify(new URL('./encryptThread.ts', import.meta.url).href)}))`, { eval: true })
      : new Worker(new URL('./encryptThread.js', import.meta.url));
    // An idle pool must not keep the process alive.
    worker.unref();
    const thread: Thread = { worker, pending: new Map(), batch: [] };
    worker.on('message', (m: FromEncryptThread) => {
      if (m.type === 'ready') {
        thread.tid = m.tid;
        return;
      }
      for (const r of m.results) {
        const p = thread.pending.get(r.id);
        thread.pending.delete(r.id);
        if ('failed' in r) p?.reject(new Error(r.failed));
        else p?.resolve({ headers: r.headers, body: r.body });
      }
    });
    const fail = (err: Error) => {
      for (const p of thread.pending.values()) p.reject(err);
      thread.pending.clear();
      const i = this.threads.indexOf(thread);
      if (i >= 0 && !this.closed) this.threads[i] = this.spawn();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`push encryption thread exited (${code})`)));
    return thread;
  }

  encrypt(req: EncryptRequest): Promise<EncryptedPush> {
    if (this.closed) return Promise.reject(new Error('push encryption pool closed'));
    const thread = this.threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    // A small Buffer is a view into Node's shared 8 KiB slab, which postMessage would copy whole: send an exact copy.
    const payload = new Uint8Array(req.payload);
    return new Promise((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      if (thread.batch.push({ id, req: { ...req, payload } }) === 1) setImmediate(() => this.send(thread));
    });
  }

  private send(thread: Thread): void {
    const jobs = thread.batch;
    thread.batch = [];
    // A thread replaced meanwhile has failed these already.
    if (this.closed || !this.threads.includes(thread)) return;
    thread.worker.postMessage({ jobs } satisfies ToEncryptThread, jobs.map((j) => j.req.payload.buffer as ArrayBuffer));
  }

  threadIds(): number[] {
    return this.threads.flatMap((t) => (t.tid !== undefined ? [t.tid] : []));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
