-- The first answer to a request sent with an Idempotency-Key, per user: a retry gets it back instead of a second
-- turn. Written in the transaction that does the work, so a commit whose answer was lost still has its key.
CREATE TABLE idempotency_keys (
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  key text NOT NULL,
  -- SHA-256 of the route and body: the same key with another request is refused.
  fingerprint text NOT NULL,
  status integer,
  response jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
