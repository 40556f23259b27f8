import { describe, expect, it } from 'vitest';

import { namedQuery } from '../../src/daemon/postgres/pool.js';
import { getVapidKeys } from '../../src/daemon/store/siteConfig.js';
import { countWebpushSubscriptions, upsertWebpushSubscription } from '../../src/daemon/store/webpush.js';
import { runCli } from '../helpers/cli.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { createTestDatabase } from '../helpers/db.js';

describe('vapid regenerate', () => {
  it('rotates the keys and deletes every subscription in one transaction; running daemons pick the new key up', async () => {
    const { url } = await createTestDatabase();
    const daemon = await startTestDaemon({ postgresUrl: url });
    const { user } = await createTestUser(daemon);
    await upsertWebpushSubscription(daemon.db, user.id, 'https://push.example.com/a', 'auth', 'p256dh');
    const before = (await getVapidKeys(daemon.db))!;

    const shown = await runCli(['vapid', 'show', '--json', '--postgres-url', url]);
    expect(JSON.parse(shown.stdout)).toEqual({ public_key: before.publicKey, subscriptions: 1 });

    const res = await runCli(['vapid', 'regenerate', '--yes', '--postgres-url', url]);
    expect(res.code, res.stderr).toBe(0);
    const after = (await getVapidKeys(daemon.db))!;
    expect(after.publicKey).not.toBe(before.publicKey);
    expect(after.privateKey).not.toBe(before.privateKey);
    expect(res.stdout.trim()).toBe(after.publicKey);
    expect(res.stdout).not.toContain(after.privateKey);
    expect(await countWebpushSubscriptions(daemon.db)).toBe(0);
    await expect
      .poll(async () => ((await (await fetch(`${daemon.url}/api/v2/buildinfo`)).json()) as { webpush_public_key: string }).webpush_public_key)
      .toBe(after.publicKey);
  });

  it('leaves the old keys and subscriptions intact when the transaction fails midway', async () => {
    const { url } = await createTestDatabase();
    const daemon = await startTestDaemon({ postgresUrl: url });
    const { user } = await createTestUser(daemon);
    await upsertWebpushSubscription(daemon.db, user.id, 'https://push.example.com/a', 'auth', 'p256dh');
    const before = (await getVapidKeys(daemon.db))!;
    // Fails the key write, which comes after the delete.
    await daemon.db.query(namedQuery('testFailFn', `CREATE OR REPLACE FUNCTION fail_key_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$`));
    await daemon.db.query(namedQuery('testFailTrigger', 'CREATE OR REPLACE TRIGGER fail_key_write BEFORE UPDATE ON site_configs FOR EACH ROW EXECUTE FUNCTION fail_key_write()'));
    const res = await runCli(['vapid', 'regenerate', '--yes', '--postgres-url', url]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/injected failure/);
    expect(await getVapidKeys(daemon.db)).toEqual(before);
    expect(await countWebpushSubscriptions(daemon.db)).toBe(1);
  });

  it('refuses without --yes when stdin is not a terminal', async () => {
    const { url } = await createTestDatabase();
    await startTestDaemon({ postgresUrl: url });
    const res = await runCli(['vapid', 'regenerate', '--postgres-url', url]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/stdin is not a terminal; pass --yes/);
  });
});
