import { isConnectionError } from './errors.js';

export interface BatcherOptions<I> {
  /** Items in one statement at most. */
  maxItems: number;
  /** With `sizeOf`: the bytes one statement carries at most (a single larger item still goes, alone). */
  maxBytes?: number;
  sizeOf?: (item: I) => number;
  /** Statements in flight at once; 1 (the default) when batches must not contend with each other. */
  maxInFlight?: number;
}

interface Waiting<I, O> {
  item: I;
  resolve(out: O): void;
  reject(err: unknown): void;
  signal?: AbortSignal | undefined;
}

/**
 * Group commit, and its twin for reads: what is asked while a statement is in flight goes together in the next
 * one, as the pubsub batches NOTIFY. No timer: an idle system sends after the current turn of the event loop (so
 * requests read together go together); under load a batch grows with the round trip it waited for, and a burst of
 * thousands costs a few pool connections, not thousands of acquisitions.
 *
 * A statement that fails on a healthy connection is retried item by item, so one bad item fails alone; a
 * connection error fails the whole batch (its callers retry as they would a single statement).
 */
export class StatementBatcher<I, O> {
  private queue: Array<Waiting<I, O>> = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly maxInFlight: number;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly opts: BatcherOptions<I>,
  ) {
    this.maxInFlight = opts.maxInFlight ?? 1;
  }

  /**
   * Resolves with the item's output. `signal` rejects the call at once; an item already in a statement still runs
   * with it (as a cancelled read whose answer nobody waits for).
   */
  submit(item: I, signal?: AbortSignal): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => {
        const i = this.queue.indexOf(waiting);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal!.reason);
      };
      const waiting: Waiting<I, O> = {
        item,
        signal,
        resolve: (out) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(out);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiting);
      if (this.inFlight < this.maxInFlight && !this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.take();
      this.inFlight++;
      void this.flush(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private take(): Array<Waiting<I, O>> {
    const { maxItems, maxBytes, sizeOf } = this.opts;
    let n = 0;
    let bytes = 0;
    for (; n < this.queue.length && n < maxItems; n++) {
      if (maxBytes !== undefined && sizeOf) {
        bytes += sizeOf(this.queue[n]!.item);
        if (n > 0 && bytes > maxBytes) break;
      }
    }
    return this.queue.splice(0, n);
  }

  private async flush(batch: Array<Waiting<I, O>>): Promise<void> {
    try {
      const out = await this.run(batch.map((w) => w.item));
      batch.forEach((w, i) => w.resolve(out[i]!));
    } catch (err) {
      if (batch.length === 1 || isConnectionError(err)) {
        for (const w of batch) w.reject(err);
        return;
      }
      for (const w of batch) {
        if (w.signal?.aborted) continue;
        try {
          w.resolve((await this.run([w.item]))[0]!);
        } catch (itemErr) {
          w.reject(itemErr);
        }
      }
    }
  }
}
