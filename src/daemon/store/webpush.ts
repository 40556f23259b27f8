import { namedQuery, type Queryable } from '../postgres/pool.js';

export interface WebpushSubscription {
  id: string;
  userId: string;
  endpoint: string;
  authKey: string;
  p256dhKey: string;
  lastSuccessAt: Date;
}

interface SubscriptionRow {
  id: string;
  user_id: string;
  endpoint: string;
  auth_key: string;
  p256dh_key: string;
  last_success_at: Date;
}

const columns = 'id, user_id, endpoint, auth_key, p256dh_key, last_success_at';
const toSubscription = (r: SubscriptionRow): WebpushSubscription => ({
  id: r.id,
  userId: r.user_id,
  endpoint: r.endpoint,
  authKey: r.auth_key,
  p256dhKey: r.p256dh_key,
  lastSuccessAt: r.last_success_at,
});

const getWebpushSubscriptionsByUserIDsQ = namedQuery('getWebpushSubscriptionsByUserIDs', `SELECT ${columns} FROM webpush_subscriptions WHERE user_id = ANY($1::uuid[])`);

/** The subscriptions of each user, in the order of `userIds`. */
export async function getWebpushSubscriptionsByUserIDs(db: Queryable, userIds: readonly string[]): Promise<WebpushSubscription[][]> {
  const { rows } = await db.query<SubscriptionRow>(getWebpushSubscriptionsByUserIDsQ, [userIds]);
  const byUser = new Map<string, WebpushSubscription[]>();
  for (const r of rows) {
    const list = byUser.get(r.user_id);
    if (list) list.push(toSubscription(r));
    else byUser.set(r.user_id, [toSubscription(r)]);
  }
  return userIds.map((id) => byUser.get(id) ?? []);
}

export async function getWebpushSubscriptionsByUserID(db: Queryable, userId: string): Promise<WebpushSubscription[]> {
  return (await getWebpushSubscriptionsByUserIDs(db, [userId]))[0]!;
}

const upsertWebpushSubscriptionQ = namedQuery(
  'upsertWebpushSubscription',
  `INSERT INTO webpush_subscriptions (user_id, endpoint, auth_key, p256dh_key) VALUES ($1, $2, $3, $4)
   ON CONFLICT (user_id, endpoint) DO UPDATE SET auth_key = EXCLUDED.auth_key, p256dh_key = EXCLUDED.p256dh_key, last_success_at = now()
   RETURNING ${columns}`,
);

export async function upsertWebpushSubscription(db: Queryable, userId: string, endpoint: string, authKey: string, p256dhKey: string): Promise<WebpushSubscription> {
  const { rows } = await db.query<SubscriptionRow>(upsertWebpushSubscriptionQ, [userId, endpoint, authKey, p256dhKey]);
  return toSubscription(rows[0]!);
}

const deleteWebpushSubscriptionByEndpointQ = namedQuery(
  'deleteWebpushSubscriptionByEndpoint',
  'DELETE FROM webpush_subscriptions WHERE user_id = $1 AND endpoint = $2',
);

/** False when the user had no such subscription. */
export async function deleteWebpushSubscriptionByEndpoint(db: Queryable, userId: string, endpoint: string): Promise<boolean> {
  return ((await db.query(deleteWebpushSubscriptionByEndpointQ, [userId, endpoint])).rowCount ?? 0) > 0;
}

const deleteWebpushSubscriptionsByIDsQ = namedQuery('deleteWebpushSubscriptionsByIDs', 'DELETE FROM webpush_subscriptions WHERE id = ANY($1::uuid[])');

export async function deleteWebpushSubscriptionsByIDs(db: Queryable, ids: string[]): Promise<void> {
  if (ids.length > 0) await db.query(deleteWebpushSubscriptionsByIDsQ, [ids]);
}

const markWebpushSubscriptionsSucceededQ = namedQuery(
  'markWebpushSubscriptionsSucceeded',
  'UPDATE webpush_subscriptions SET last_success_at = now() WHERE id = ANY($1::uuid[])',
);

export async function markWebpushSubscriptionsSucceeded(db: Queryable, ids: string[]): Promise<void> {
  if (ids.length > 0) await db.query(markWebpushSubscriptionsSucceededQ, [ids]);
}

const deleteStaleWebpushSubscriptionsQ = namedQuery(
  'deleteStaleWebpushSubscriptions',
  `DELETE FROM webpush_subscriptions WHERE last_success_at < now() - make_interval(days => $1) RETURNING user_id`,
);

/** Returns the users whose subscriptions were swept. */
export async function deleteStaleWebpushSubscriptions(db: Queryable, days: number): Promise<string[]> {
  const { rows } = await db.query<{ user_id: string }>(deleteStaleWebpushSubscriptionsQ, [days]);
  return [...new Set(rows.map((r) => r.user_id))];
}

const deleteAllWebpushSubscriptionsQ = namedQuery('deleteAllWebpushSubscriptions', 'DELETE FROM webpush_subscriptions');

export async function deleteAllWebpushSubscriptions(tx: Queryable): Promise<number> {
  return (await tx.query(deleteAllWebpushSubscriptionsQ)).rowCount ?? 0;
}

const countWebpushSubscriptionsQ = namedQuery('countWebpushSubscriptions', 'SELECT count(*)::int AS n FROM webpush_subscriptions');

export async function countWebpushSubscriptions(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(countWebpushSubscriptionsQ);
  return rows[0]!.n;
}
