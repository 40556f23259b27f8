import { namedQuery, type Queryable } from '../postgres/pool.js';

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
}

const getVapidKeysQ = namedQuery(
  'getVapidKeys',
  `SELECT max(value) FILTER (WHERE key = 'webpush_vapid_public_key') AS public_key,
          max(value) FILTER (WHERE key = 'webpush_vapid_private_key') AS private_key
     FROM site_configs WHERE key IN ('webpush_vapid_public_key', 'webpush_vapid_private_key')`,
);

export async function getVapidKeys(db: Queryable): Promise<VapidKeys | undefined> {
  const { rows } = await db.query<{ public_key: string | null; private_key: string | null }>(getVapidKeysQ);
  const r = rows[0];
  return r?.public_key && r.private_key ? { publicKey: r.public_key, privateKey: r.private_key } : undefined;
}

// Both keys in one statement: ON CONFLICT DO NOTHING lets the first of several starting replicas win.
const insertVapidKeysIfAbsentQ = namedQuery(
  'insertVapidKeysIfAbsent',
  `INSERT INTO site_configs (key, value) VALUES ('webpush_vapid_public_key', $1), ('webpush_vapid_private_key', $2)
   ON CONFLICT (key) DO NOTHING`,
);

export async function insertVapidKeysIfAbsent(db: Queryable, keys: VapidKeys): Promise<void> {
  await db.query(insertVapidKeysIfAbsentQ, [keys.publicKey, keys.privateKey]);
}

const upsertVapidKeysQ = namedQuery(
  'upsertVapidKeys',
  `INSERT INTO site_configs (key, value) VALUES ('webpush_vapid_public_key', $1), ('webpush_vapid_private_key', $2)
   ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
);

export async function upsertVapidKeys(tx: Queryable, keys: VapidKeys): Promise<void> {
  await tx.query(upsertVapidKeysQ, [keys.publicKey, keys.privateKey]);
}

const notifyVapidChangeQ = namedQuery('notifyVapidChange', `SELECT pg_notify('webpush:vapid_change', '')`);

/** Inside the rotating transaction: daemons hear it only if the rotation commits. */
export async function notifyVapidChange(tx: Queryable): Promise<void> {
  await tx.query(notifyVapidChangeQ);
}
