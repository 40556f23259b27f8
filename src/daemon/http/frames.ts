/** Frames hold at most this many events (DESIGN §4). */
export const maxEventsPerFrame = 256;
/** Close code for a client that does not keep up (RFC 6455 1013: try again later). */
export const closeTooSlow = 1013;
/** Parts wait at most this long to share a frame (models emit ~150 tokens/s); anything else goes at once. */
export const defaultPartsWindowMs = 25;
/** A cut client gets this long to take the close frame before its socket is destroyed. */
const closeGraceMs = 1000;

/** The part of a `ws` WebSocket the writer uses (tests pass a fake). */
export interface FrameSocket {
  readonly readyState: number;
  readonly OPEN: number;
  /** Bytes handed to the socket and not yet written to the kernel. */
  readonly bufferedAmount: number;
  send(data: string, cb: (err?: Error) => void): void;
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
}

export interface FrameWriter {
  /** Queues events; never blocks and never throws. */
  send(events: readonly object[]): void;
  /** Resolves when everything queued has been written to the kernel, or the client is gone. */
  drained(): Promise<void>;
  /** The socket closed: drop the buffer, release whoever waits in `drained`. */
  close(): void;
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
  let pending: string[] = [];
  let pendingBytes = 0;
  /** The largest event waiting, and the largest in the batch out; the bound does not count it. */
  let pendingLargest = 0;
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
  const overBound = () => pendingBytes + socket.bufferedAmount - Math.max(pendingLargest, inFlightLargest) > opts.backlogBytes;

  const drop = () => {
    pending = [];
    pendingBytes = 0;
    pendingLargest = 0;
  };

  const cutOff = () => {
    cut = true;
    drop();
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
    if (pending.length > 0) schedule(true);
    else wake();
  };

  const flush = () => {
    clearTimers();
    if (!open()) {
      wake();
      return;
    }
    if (pending.length === 0) {
      if (inFlight === 0) wake();
      return;
    }
    // Everything before has been taken; a socket still holding more than the bound is not being read.
    if (socket.bufferedAmount > opts.backlogBytes) return cutOff();
    const events = pending;
    inFlightLargest = pendingLargest;
    drop();
    urgent = false;
    for (let i = 0; i < events.length; i += maxEventsPerFrame) {
      inFlight++;
      socket.send(`[${events.slice(i, i + maxEventsPerFrame).join(',')}]`, written);
    }
  };

  /** Waits for the socket while a batch is out; else sends now (`now`), or within the parts window. */
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
        const json = JSON.stringify(e);
        const bytes = Buffer.byteLength(json);
        pending.push(json);
        pendingBytes += bytes;
        if (bytes > pendingLargest) pendingLargest = bytes;
        if (!('type' in e) || e.type !== 'message_part') urgent = true;
      }
      // Waiting on the client: past the bound it is cut. Waiting on our own window: past the bound it ends early.
      if (inFlight > 0) {
        if (overBound()) cutOff();
        return;
      }
      schedule(urgent || pendingBytes > opts.backlogBytes);
    },
    drained() {
      if (!open() || (inFlight === 0 && pending.length === 0)) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    close() {
      cut = true;
      drop();
      clearTimers();
      wake();
    },
  };
}
