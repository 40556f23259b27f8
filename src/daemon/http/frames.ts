/** Frames hold at most this many events (DESIGN §4). */
export const maxEventsPerFrame = 256;
/** Close code for a client that does not keep up (RFC 6455 1013: try again later). */
export const closeTooSlow = 1013;
/**
 * Parts wait at most this long to share a frame; anything else goes at once. At a model's ~150 tokens/s that is ~7
 * tokens a frame, 20 frames a second per viewer, and a turn's last parts often share the frame of its reply (issue
 * #17: 25 ms gave 2.75 frames per turn in the scaletest, 50 ms 2.41).
 */
export const defaultPartsWindowMs = 50;
const textFrame = { binary: false };
/** A cut client gets this long to take the close frame before its socket is destroyed. */
const closeGraceMs = 1000;

/** The part of a `ws` WebSocket the writer uses (tests pass a fake). */
export interface FrameSocket {
  readonly readyState: number;
  readonly OPEN: number;
  /** Bytes handed to the socket and not yet written to the kernel. */
  readonly bufferedAmount: number;
  send(data: Buffer, options: { binary: boolean }, cb: (err?: Error) => void): void;
  close(code: number, reason: string): void;
  terminate(): void;
}

export interface FrameWriterOptions {
  /**
   * Bytes a client may leave unread (our buffer plus the socket's) before it is cut, not counting the largest event
   * among them: one event larger than the bound (a long reply) still reaches a client that reads.
   */
  backlogBytes: number;
  partsWindowMs?: number;
  /** Called once when the client is cut for not reading. */
  onCut: () => void;
  /** Called for each frame handed to the socket, with its payload bytes. */
  onFrame?: (bytes: number) => void;
}

export interface FrameWriter {
  /** Queues events; never blocks and never throws. */
  send(events: readonly object[]): void;
  /** Resolves when everything queued has been written to the kernel, or the client is gone. */
  drained(): Promise<void>;
  /** The socket closed: drop the buffer, release whoever waits in `drained`. */
  close(): void;
}

const comma = 0x2c;
const openBracket = 0x5b;
const closeBracket = 0x5d;
const openFrame = Buffer.from('[');
const closeFrame = Buffer.from(']');

/**
 * Events waiting for one client, each encoded once into one growing buffer as `,e1,e2,…` with a spare byte at the
 * end: no object per event for the garbage collector to trace however long a client lags (a few clients with
 * 10⁵ queued strings each made major collections stall everyone), and the last frame is a view of the buffer with
 * `[` and `]` written over the first separator and the spare byte.
 */
class PendingEvents {
  private buf = Buffer.alloc(0);
  private used = 0;
  private starts: number[] = [];
  /** Bytes of the largest event waiting. */
  largest = 0;

  get bytes(): number {
    return this.used;
  }

  get count(): number {
    return this.starts.length;
  }

  push(json: string): void {
    const bytes = Buffer.byteLength(json);
    const need = this.used + bytes + 2;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2, 4096));
      this.buf.copy(grown, 0, 0, this.used);
      this.buf = grown;
    }
    this.starts.push(this.used);
    this.buf[this.used] = comma;
    this.buf.write(json, this.used + 1, 'utf8');
    this.used += bytes + 1;
    if (bytes > this.largest) this.largest = bytes;
  }

  /** The frames of at most `maxEventsPerFrame` events, emptying the buffer (the frames keep the old one until written). */
  take(): Buffer[] {
    const { buf, used, starts } = this;
    const frames: Buffer[] = [];
    for (let i = 0; i < starts.length; i += maxEventsPerFrame) {
      const start = starts[i]!;
      const next = starts[i + maxEventsPerFrame];
      if (next === undefined) {
        buf[start] = openBracket;
        buf[used] = closeBracket;
        frames.push(buf.subarray(start, used + 1));
      } else frames.push(Buffer.concat([openFrame, buf.subarray(start + 1, next), closeFrame]));
    }
    this.clear();
    return frames;
  }

  clear(): void {
    this.buf = Buffer.alloc(0);
    this.used = 0;
    this.starts = [];
    this.largest = 0;
  }
}

/**
 * Writes stream events to one WebSocket with at most one batch of writes outstanding: while the socket has not taken
 * the last batch, events wait in our own buffer, and all of them leave as one frame once it has. A fast client gets
 * each event at once, a slow one fewer, larger frames, and a client that stops reading is cut when the buffer plus
 * the socket's backlog pass the bound — checked before each write, in bytes. Because the socket never holds more
 * than a batch or two, cutting a client costs the same whatever it had queued (Node builds one error per queued
 * write when a socket is destroyed), and no other client waits for it.
 */
export function frameWriter(socket: FrameSocket, opts: FrameWriterOptions): FrameWriter {
  const partsWindowMs = opts.partsWindowMs ?? defaultPartsWindowMs;
  const pending = new PendingEvents();
  /** The largest event in the batch out: like the largest waiting, the bound does not count it. */
  let inFlightLargest = 0;
  let urgent = false;
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  let cut = false;
  let waiters: Array<() => void> = [];

  const open = () => !cut && socket.readyState === socket.OPEN;
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const resolve of w) resolve();
  };
  const clearTimers = () => {
    if (timer) clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
    timer = undefined;
    immediate = undefined;
  };
  const overBound = () => pending.bytes + socket.bufferedAmount - Math.max(pending.largest, inFlightLargest) > opts.backlogBytes;

  const cutOff = () => {
    cut = true;
    pending.clear();
    clearTimers();
    wake();
    opts.onCut();
    socket.close(closeTooSlow, 'client too slow: stream backlog exceeded');
    // The close frame waits behind the unread backlog; do not wait for a client that is not reading.
    setTimeout(() => socket.terminate(), closeGraceMs).unref();
  };

  const written = () => {
    inFlight--;
    if (inFlight > 0) return;
    inFlightLargest = 0;
    // Parts alone still wait out their window: a client that reads fast gets them in a few frames a second, not one
    // write per token.
    if (pending.count > 0) schedule(urgent || pending.bytes > opts.backlogBytes);
    else wake();
  };

  const flush = () => {
    clearTimers();
    if (!open()) {
      wake();
      return;
    }
    if (pending.count === 0) {
      if (inFlight === 0) wake();
      return;
    }
    // Everything before has been taken; a socket still holding more than the bound is not being read.
    if (socket.bufferedAmount > opts.backlogBytes) return cutOff();
    inFlightLargest = pending.largest;
    urgent = false;
    for (const frame of pending.take()) {
      inFlight++;
      opts.onFrame?.(frame.length);
      socket.send(frame, textFrame, written);
    }
  };

  /** Waits for the socket while a batch is out; else sends at once (`now`), or at the end of the parts window. */
  const schedule = (now: boolean) => {
    if (inFlight > 0 || immediate) return;
    if (now) {
      if (timer) clearTimeout(timer);
      timer = undefined;
      immediate = setImmediate(flush);
    } else timer ??= setTimeout(flush, partsWindowMs);
  };

  return {
    send(events) {
      if (!open()) return;
      for (const e of events) {
        pending.push(JSON.stringify(e));
        if (!('type' in e) || e.type !== 'message_part') urgent = true;
      }
      // Waiting on the client: past the bound it is cut. Waiting on our own window: past the bound it ends early.
      if (inFlight > 0) {
        if (overBound()) cutOff();
        return;
      }
      schedule(urgent || pending.bytes > opts.backlogBytes);
    },
    drained() {
      if (!open() || (inFlight === 0 && pending.count === 0)) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    close() {
      cut = true;
      pending.clear();
      clearTimers();
      wake();
    },
  };
}
