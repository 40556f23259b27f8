import type { APIKey, User } from '../store/types.js';

/** Users and tokens as the API and the CLI's --json show them; never a secret. */
export const userJson = (u: User) => ({
  id: u.id,
  username: u.username,
  email: u.email,
  is_admin: u.isAdmin,
  status: u.suspendedAt ? ('suspended' as const) : ('active' as const),
  created_at: u.createdAt.toISOString(),
});

export const tokenJson = (k: APIKey) => ({
  id: k.id,
  name: k.name,
  created_at: k.createdAt.toISOString(),
  last_used_at: k.lastUsedAt?.toISOString() ?? null,
  expires_at: k.expiresAt.toISOString(),
});
