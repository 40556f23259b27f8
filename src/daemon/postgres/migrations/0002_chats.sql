-- API keys of providers are not stored: they come from the daemon's flags or environment and live in memory only.
CREATE TABLE chat_providers (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  type text NOT NULL CHECK (type IN ('fake', 'openai-compat')),
  base_url text,
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat_model_configs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  provider_id uuid NOT NULL REFERENCES chat_providers (id) ON DELETE CASCADE,
  model text NOT NULL,
  is_default boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (provider_id, model)
);
CREATE UNIQUE INDEX chat_model_configs_one_default ON chat_model_configs (is_default) WHERE is_default;

CREATE TABLE chats (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title text NOT NULL,
  status text NOT NULL CHECK (status IN ('waiting', 'pending', 'running', 'error')),
  worker_id text,
  started_at timestamptz,
  heartbeat_at timestamptz,
  last_model_config_id uuid REFERENCES chat_model_configs (id) ON DELETE SET NULL,
  last_error text,
  archived boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chats_owner_idx ON chats (owner_id, created_at DESC, id DESC) WHERE NOT archived;
-- The worker's claim and the stale sweep each scan only the rows they can act on.
CREATE INDEX chats_pending_idx ON chats (updated_at) WHERE status = 'pending' AND NOT archived;
CREATE INDEX chats_running_idx ON chats (heartbeat_at) WHERE status = 'running';

-- The bigserial id is the stream cursor (`after_id`).
CREATE TABLE chat_messages (
  id bigserial PRIMARY KEY,
  chat_id uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('user', 'assistant')),
  content jsonb NOT NULL,
  usage jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_messages_chat_idx ON chat_messages (chat_id, id);

CREATE TABLE chat_queued_messages (
  id bigserial PRIMARY KEY,
  chat_id uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
  content jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_queued_messages_chat_idx ON chat_queued_messages (chat_id, id);
