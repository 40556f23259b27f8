-- Live turns across replicas (DESIGN §4): every run of a turn has a generation (bumped by each claim and each retry),
-- so a part names the run it belongs to; `version` goes up with every change a stream shows (status, worker,
-- error, generation, retry, queue), so a replica can tell from one batched read which streams missed a notice.
-- A retryable provider failure keeps its retry state on the row: a client that connects mid-backoff sees it.
ALTER TABLE chats
  ADD COLUMN generation bigint NOT NULL DEFAULT 0,
  ADD COLUMN version bigint NOT NULL DEFAULT 0,
  ADD COLUMN last_error_kind text,
  ADD COLUMN retry_attempt int,
  ADD COLUMN retry_kind text,
  ADD COLUMN retry_delay_ms int,
  ADD COLUMN retrying_at timestamptz;

-- A trigger rather than `version = version + 1` in each statement: a statement added later cannot forget it. The
-- heartbeat (the most frequent update) changes nothing a stream shows and bumps nothing.
CREATE FUNCTION chats_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status <> 'running' THEN
    NEW.retry_attempt := NULL;
    NEW.retry_kind := NULL;
    NEW.retry_delay_ms := NULL;
    NEW.retrying_at := NULL;
  END IF;
  IF NEW.version = OLD.version AND (
       NEW.status IS DISTINCT FROM OLD.status OR NEW.worker_id IS DISTINCT FROM OLD.worker_id
    OR NEW.last_error IS DISTINCT FROM OLD.last_error OR NEW.archived IS DISTINCT FROM OLD.archived
    OR NEW.generation IS DISTINCT FROM OLD.generation OR NEW.retrying_at IS DISTINCT FROM OLD.retrying_at
    OR NEW.title IS DISTINCT FROM OLD.title) THEN
    NEW.version := OLD.version + 1;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER chats_bump_version BEFORE UPDATE ON chats FOR EACH ROW EXECUTE FUNCTION chats_bump_version();

DROP FUNCTION chat_send_message(uuid, uuid, text, int);

CREATE FUNCTION chat_send_message(p_chat uuid, p_owner uuid, p_content text, p_queue_limit int)
RETURNS TABLE (
  id uuid, owner_id uuid, title text, status text, worker_id text, started_at timestamptz, heartbeat_at timestamptz,
  last_model_config_id uuid, last_error text, archived boolean, created_at timestamptz, updated_at timestamptz,
  generation bigint, version bigint, last_error_kind text, retry_attempt int, retry_kind text, retry_delay_ms int,
  retrying_at timestamptz,
  outcome text, item_id bigint, item_created_at timestamptz, prev_message_id bigint,
  promoted_id bigint, promoted_content text, promoted_created_at timestamptz
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  c chats%ROWTYPE;
  v_outcome text;
  v_item bigint;
  v_item_at timestamptz;
  v_prev bigint;
  v_queued jsonb;
  v_promoted bigint;
  v_promoted_at timestamptz;
BEGIN
  SELECT * INTO c FROM chats WHERE chats.id = p_chat AND chats.owner_id = p_owner FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF c.archived THEN
    v_outcome := 'archived';
  ELSIF c.status IN ('running', 'pending') THEN
    IF (SELECT count(*) FROM chat_queued_messages q WHERE q.chat_id = p_chat) >= p_queue_limit THEN
      v_outcome := 'full';
    ELSE
      INSERT INTO chat_queued_messages (chat_id, content) VALUES (p_chat, to_jsonb(p_content))
        RETURNING chat_queued_messages.id, chat_queued_messages.created_at INTO v_item, v_item_at;
      -- The queue is part of what a stream shows.
      UPDATE chats SET version = chats.version + 1 WHERE chats.id = p_chat RETURNING * INTO c;
      v_outcome := 'queued';
    END IF;
  ELSE
    SELECT coalesce(max(m.id), 0) INTO v_prev FROM chat_messages m WHERE m.chat_id = p_chat;
    DELETE FROM chat_queued_messages
     WHERE chat_queued_messages.id = (SELECT q.id FROM chat_queued_messages q WHERE q.chat_id = p_chat ORDER BY q.id LIMIT 1)
     RETURNING chat_queued_messages.content INTO v_queued;
    IF v_queued IS NOT NULL THEN
      INSERT INTO chat_messages (chat_id, role, content) VALUES (p_chat, 'user', v_queued)
        RETURNING chat_messages.id, chat_messages.created_at INTO v_promoted, v_promoted_at;
      INSERT INTO chat_queued_messages (chat_id, content) VALUES (p_chat, to_jsonb(p_content))
        RETURNING chat_queued_messages.id, chat_queued_messages.created_at INTO v_item, v_item_at;
      v_outcome := 'promoted';
    ELSE
      INSERT INTO chat_messages (chat_id, role, content) VALUES (p_chat, 'user', to_jsonb(p_content))
        RETURNING chat_messages.id, chat_messages.created_at INTO v_item, v_item_at;
      v_outcome := 'started';
    END IF;
    UPDATE chats SET status = 'pending', last_error = NULL, last_error_kind = NULL, worker_id = NULL, updated_at = now()
     WHERE chats.id = p_chat RETURNING * INTO c;
  END IF;
  RETURN QUERY SELECT c.id, c.owner_id, c.title, c.status, c.worker_id, c.started_at, c.heartbeat_at, c.last_model_config_id,
    c.last_error, c.archived, c.created_at, c.updated_at, c.generation, c.version, c.last_error_kind, c.retry_attempt,
    c.retry_kind, c.retry_delay_ms, c.retrying_at,
    v_outcome, v_item, v_item_at, v_prev, v_promoted, v_queued #>> '{}', v_promoted_at;
END
$$;

DROP FUNCTION chat_end_turn(uuid, text, text, text);

CREATE FUNCTION chat_end_turn(p_chat uuid, p_worker text, p_text text, p_error text, p_error_kind text)
RETURNS TABLE (
  id uuid, owner_id uuid, title text, status text, worker_id text, started_at timestamptz, heartbeat_at timestamptz,
  last_model_config_id uuid, last_error text, archived boolean, created_at timestamptz, updated_at timestamptz,
  generation bigint, version bigint, last_error_kind text, retry_attempt int, retry_kind text, retry_delay_ms int,
  retrying_at timestamptz,
  prev_message_id bigint, assistant_id bigint, assistant_created_at timestamptz,
  promoted_id bigint, promoted_content text, promoted_created_at timestamptz
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  c chats%ROWTYPE;
  v_prev bigint;
  v_assistant bigint;
  v_assistant_at timestamptz;
  v_queued jsonb;
  v_promoted bigint;
  v_promoted_at timestamptz;
BEGIN
  SELECT * INTO c FROM chats WHERE chats.id = p_chat FOR UPDATE;
  IF NOT FOUND OR c.status <> 'running' OR c.worker_id IS DISTINCT FROM p_worker THEN
    RETURN;
  END IF;
  SELECT coalesce(max(m.id), 0) INTO v_prev FROM chat_messages m WHERE m.chat_id = p_chat;
  IF p_text IS NOT NULL THEN
    INSERT INTO chat_messages (chat_id, role, content) VALUES (p_chat, 'assistant', to_jsonb(p_text))
      RETURNING chat_messages.id, chat_messages.created_at INTO v_assistant, v_assistant_at;
  END IF;
  IF p_error IS NULL THEN
    DELETE FROM chat_queued_messages
     WHERE chat_queued_messages.id = (SELECT q.id FROM chat_queued_messages q WHERE q.chat_id = p_chat ORDER BY q.id LIMIT 1)
     RETURNING chat_queued_messages.content INTO v_queued;
    IF v_queued IS NOT NULL THEN
      INSERT INTO chat_messages (chat_id, role, content) VALUES (p_chat, 'user', v_queued)
        RETURNING chat_messages.id, chat_messages.created_at INTO v_promoted, v_promoted_at;
    END IF;
  END IF;
  UPDATE chats
     SET status = CASE WHEN v_promoted IS NOT NULL THEN 'pending' WHEN p_error IS NOT NULL THEN 'error' ELSE 'waiting' END,
         last_error = p_error, last_error_kind = p_error_kind, worker_id = NULL, updated_at = now()
   WHERE chats.id = p_chat
   RETURNING * INTO c;
  RETURN QUERY SELECT c.id, c.owner_id, c.title, c.status, c.worker_id, c.started_at, c.heartbeat_at, c.last_model_config_id,
    c.last_error, c.archived, c.created_at, c.updated_at, c.generation, c.version, c.last_error_kind, c.retry_attempt,
    c.retry_kind, c.retry_delay_ms, c.retrying_at,
    v_prev, v_assistant, v_assistant_at, v_promoted, v_queued #>> '{}', v_promoted_at;
END
$$;
