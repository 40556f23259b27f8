import pg from 'pg';

import { StatementBatcher } from '../postgres/batcher.js';
import { listenBatch, listenStatement } from '../store/pubsub.js';

/** The LISTEN side of one connection. A fake stands in for it in race tests. */
export interface ListenerConnection {
  listen(event: string): Promise<void>;
  unlisten(event: string): Promise<void>;
  close(): Promise<void>;
}

export interface ListenerEvents {
  notification(event: string, payload: string): void;
  /** The connection is gone (error or end); called at most once. */
  lost(err: Error): void;
}

export type ConnectListener = (events: ListenerEvents) => Promise<ListenerConnection>;

/**
 * Where the pubsub's own connections go. A function is asked again on every (re)connect: `pubsub tail` re-reads the
 * embedded server's run file, whose port changes on every server start.
 */
export type ConnectionConfigSource = pg.ClientConfig | (() => Promise<pg.ClientConfig>);

export const resolveConnectionConfig = (source: ConnectionConfigSource): Promise<pg.ClientConfig> =>
  typeof source === 'function' ? source() : Promise.resolve(source);

/** One dedicated `pg.Client` for LISTEN: a pooled client would be handed to someone else and miss notifications. */
export function pgListenerConnector(source: ConnectionConfigSource): ConnectListener {
  return async (events) => {
    const config = await resolveConnectionConfig(source);
    // Keepalive notices a dead peer that never sends a FIN; the connect timeout keeps a reconnect from hanging.
    const client = new pg.Client({ ...config, application_name: 'coder-lite pubsub', keepAlive: true, connectionTimeoutMillis: 10_000 });
    let gone = false;
    const lost = (err: Error) => {
      if (gone) return;
      gone = true;
      events.lost(err);
    };
    client.on('error', lost);
    client.on('end', () => lost(new Error('pubsub: LISTEN connection ended')));
    client.on('notification', (n) => events.notification(n.channel, n.payload ?? ''));
    try {
      await client.connect();
    } catch (err) {
      gone = true;
      // The half-open client is dropped here; its 'error' listener stays, so a late socket error is harmless.
      await client.end().catch(() => undefined);
      throw err;
    }
    // One statement at a time (pg deprecates overlapping queries on one client), holding every LISTEN and UNLISTEN
    // asked for meanwhile: thousands of streams opening at once cost a few round trips, not one each in a line.
    const statements = new StatementBatcher(
      async (sqls: string[]) => {
        await listenBatch(client, sqls);
        return sqls.map(() => undefined);
      },
      { maxItems: 1000 },
    );
    return {
      listen: (event) => statements.submit(listenStatement('LISTEN', event)),
      unlisten: (event) => statements.submit(listenStatement('UNLISTEN', event)),
      async close() {
        gone = true;
        await client.end().catch(() => undefined);
      },
    };
  };
}
