-- Daemon-wide settings. The VAPID private key lives here: it signs every push, so a hash cannot stand in for it.
CREATE TABLE site_configs (
  key text PRIMARY KEY,
  value text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webpush_subscriptions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  endpoint text NOT NULL,
  auth_key text NOT NULL,
  p256dh_key text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Some push services answer 2xx for dead endpoints: a subscription without a success for 60 days is swept.
  last_success_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, endpoint)
);
