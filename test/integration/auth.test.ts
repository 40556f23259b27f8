import pg from 'pg';
import { describe, expect, it } from 'vitest';

import { createTestUser, startTestDaemon } from '../helpers/daemon.js';

describe('API token authentication', async () => {
  const daemon = await startTestDaemon();
  const { user, token } = await createTestUser(daemon, 'alice');
  const me = (headers: Record<string, string | undefined>) => fetch(`${daemon.url}/api/v2/users/me`, { headers: headers as Record<string, string> });

  it('answers 401 JSON without a token', async () => {
    const res = await me({});
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ message: 'authentication required' });
  });

  it('answers 401 for a wrong, malformed or foreign-secret token', async () => {
    const [id] = token.split('-');
    for (const bad of ['nonsense', `${id}-${'A'.repeat(32)}`, `zzzzzzzzzz-${token.split('-').slice(1).join('-')}`]) {
      const res = await me({ 'Coder-Session-Token': bad });
      expect(res.status, bad).toBe(401);
      expect(await res.json()).toMatchObject({ message: 'invalid or expired API token' });
    }
  });

  it('accepts the token in either header and returns the caller', async () => {
    for (const headers of [{ 'Coder-Session-Token': token }, { Authorization: `Bearer ${token}` }]) {
      const res = await me(headers);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id: user.id, username: 'alice' });
    }
  });

  it('stores no plaintext token or secret', async () => {
    const client = new pg.Client({ ...daemon.db.connectionConfig });
    await client.connect();
    try {
      const { rows } = await client.query<{ dump: string }>(
        `SELECT concat_ws('|', id, user_id, encode(hashed_secret, 'escape'), encode(hashed_secret, 'hex'), encode(hashed_secret, 'base64')) AS dump FROM api_keys`,
      );
      expect(rows).toHaveLength(1);
      const secret = token.slice(token.indexOf('-') + 1);
      expect(rows[0]!.dump).not.toContain(secret);
      expect(rows[0]!.dump).not.toContain(Buffer.from(secret, 'base64url').toString('hex'));
    } finally {
      await client.end();
    }
  });
});
