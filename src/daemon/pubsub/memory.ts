import { silentLogger, type Logger } from '../observability/logger.js';
import { ErrPubsubClosed, validateChannel, validatePayload, type Cancel, type Listener, type ListenerWithErr, type Pubsub } from './pubsub.js';
import { MessageQueue, withoutErr } from './queue.js';

export interface MemoryPubsubOptions {
  logger?: Logger;
}

/**
 * The pubsub of a single process, with the PostgreSQL backend's semantics: the same validation, a bounded queue per
 * subscription delivering serially and asynchronously, cancel from inside a listener.
 */
export function createMemoryPubsub(opts: MemoryPubsubOptions = {}): Pubsub {
  const logger = opts.logger ?? silentLogger();
  const channels = new Map<string, Set<MessageQueue>>();
  let closed = false;
  let closing: Promise<void> | undefined;

  function subscribeQueue(event: string, listener: ListenerWithErr): Promise<Cancel> {
    if (closed) return Promise.reject(new ErrPubsubClosed());
    try {
      validateChannel(event);
    } catch (err) {
      return Promise.reject(err);
    }
    const queue = new MessageQueue(listener, { logger, event });
    let set = channels.get(event);
    if (!set) channels.set(event, (set = new Set()));
    set.add(queue);
    const cancel = async () => {
      queue.close();
      const current = channels.get(event);
      if (current?.delete(queue) && current.size === 0) channels.delete(event);
    };
    return Promise.resolve(cancel);
  }

  return {
    async publish(event, payload) {
      if (closed) throw new ErrPubsubClosed();
      validateChannel(event);
      const buf = validatePayload(payload);
      for (const queue of channels.get(event) ?? []) queue.enqueue(buf);
    },
    subscribe: (event: string, listener: Listener) => subscribeQueue(event, withoutErr(listener)),
    subscribeWithErr: subscribeQueue,
    close() {
      closed = true;
      for (const set of channels.values()) for (const queue of set) queue.close();
      channels.clear();
      return (closing ??= Promise.resolve());
    },
  };
}
