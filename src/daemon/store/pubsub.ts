import { namedQuery, type Queryable } from '../postgres/pool.js';

// The channel is a bound parameter: no channel name can ever change the statement.
const publishNotifyQ = namedQuery('publishNotify', 'SELECT pg_notify($1, $2)');

export async function publishNotify(db: Queryable, event: string, payload: string): Promise<void> {
  await db.query(publishNotifyQ, [event, payload]);
}

// One statement is one transaction: every notification in it is delivered together, in array order, at commit.
// PostgreSQL folds identical (channel, payload) pairs within a transaction, so callers never pass duplicates.
// Measured here against fixed-arity `SELECT pg_notify($1,$2), pg_notify($3,$4)…`: unnest is as fast or faster at 16
// to 1000 messages (~560k msg/s at 256) and needs one prepared statement instead of one per arity. ORDER BY costs
// ~3 % and makes the order a guarantee rather than an accident of the plan.
const publishNotifyBatchQ = namedQuery(
  'publishNotifyBatch',
  'SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(c, p, n) ORDER BY n',
);

export async function publishNotifyBatch(db: Queryable, events: readonly string[], payloads: readonly string[]): Promise<void> {
  await db.query(publishNotifyBatchQ, [events, payloads]);
}

/** The slice of a dedicated `pg.Client` that LISTEN/UNLISTEN need (they cannot be prepared or take parameters). */
export interface SimpleQueryClient {
  query(text: string): Promise<unknown>;
}

// Quoted, so the channel keeps its case and any character; pg_notify does not fold case either.
function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** LISTEN or UNLISTEN of one channel, as a statement for `listenBatch`. */
export const listenStatement = (op: 'LISTEN' | 'UNLISTEN', event: string) => `${op} ${quoteIdentifier(event)}`;

/** Several LISTEN/UNLISTEN statements in one round trip, in order (one simple query, one transaction). */
export async function listenBatch(client: SimpleQueryClient, statements: readonly string[]): Promise<void> {
  await client.query(statements.join('; '));
}
