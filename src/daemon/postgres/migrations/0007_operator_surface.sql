-- Users: an admin role (the first user of an empty database gets it) and suspension (keys stay, but refuse).
ALTER TABLE users ADD COLUMN is_admin boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN suspended_at timestamptz;
-- Databases made before roles existed: their oldest user runs them.
UPDATE users SET is_admin = true WHERE id = (SELECT id FROM users ORDER BY created_at, id LIMIT 1);

-- Tokens: a name per user, an expiry and when last used (written at most about once a minute per key).
ALTER TABLE api_keys ADD COLUMN name text;
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
UPDATE api_keys SET name = 'token-' || id, expires_at = created_at + interval '30 days';
ALTER TABLE api_keys ALTER COLUMN name SET NOT NULL;
ALTER TABLE api_keys ALTER COLUMN expires_at SET NOT NULL;
CREATE UNIQUE INDEX api_keys_user_name_key ON api_keys (user_id, lower(name));

-- Providers: an API key encrypted with the daemon's --encryption-key (AES-256-GCM: iv | tag | ciphertext); model
-- configs can be disabled and carry a display name.
ALTER TABLE chat_providers ADD COLUMN api_key_encrypted bytea;
ALTER TABLE chat_model_configs ADD COLUMN enabled boolean NOT NULL DEFAULT true;
ALTER TABLE chat_model_configs ADD COLUMN display_name text;
ALTER TABLE chat_model_configs ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
