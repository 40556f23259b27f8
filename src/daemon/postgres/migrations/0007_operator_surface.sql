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

-- Puts one queued message at the head of a chat's queue (Coder's "promote", and a send with busy_behavior
-- "interrupt"): the queue runs in id order, so the contents of the queued rows up to it move one place back and it takes
-- the first id. Only this chat's rows are touched, and their ids stay, so every other reader keeps ordering by id.
-- With p_content, that message is queued first (at the tail, within p_queue_limit). A chat that is neither running
-- nor pending starts the head at once (as a turn's end promotes it). Outcomes: archived, full, not_found, idle (a
-- send to a chat with nothing running: the caller sends it normally), queued (head of the queue; the running turn is
-- the caller's to stop), started (the chat is pending with it).
CREATE FUNCTION chat_queue_to_front(p_chat uuid, p_owner uuid, p_queued bigint, p_content text, p_queue_limit int)
RETURNS TABLE (outcome text, status text, head_id bigint, head_content text, head_created_at timestamptz, message_id bigint, prev_message_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  c chats%ROWTYPE;
  v_target bigint := p_queued;
  v_head bigint;
  v_content jsonb;
  v_created timestamptz;
  v_message bigint;
  v_prev bigint;
BEGIN
  SELECT * INTO c FROM chats WHERE chats.id = p_chat AND chats.owner_id = p_owner FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF c.archived THEN
    RETURN QUERY SELECT 'archived'::text, c.status, NULL::bigint, NULL::text, NULL::timestamptz, NULL::bigint, NULL::bigint;
    RETURN;
  END IF;
  IF p_content IS NOT NULL THEN
    IF c.status NOT IN ('running', 'pending') THEN
      RETURN QUERY SELECT 'idle'::text, c.status, NULL::bigint, NULL::text, NULL::timestamptz, NULL::bigint, NULL::bigint;
      RETURN;
    END IF;
    IF (SELECT count(*) FROM chat_queued_messages q WHERE q.chat_id = p_chat) >= p_queue_limit THEN
      RETURN QUERY SELECT 'full'::text, c.status, NULL::bigint, NULL::text, NULL::timestamptz, NULL::bigint, NULL::bigint;
      RETURN;
    END IF;
    INSERT INTO chat_queued_messages (chat_id, content) VALUES (p_chat, to_jsonb(p_content)) RETURNING chat_queued_messages.id INTO v_target;
  ELSIF NOT EXISTS (SELECT 1 FROM chat_queued_messages q WHERE q.chat_id = p_chat AND q.id = v_target) THEN
    RETURN QUERY SELECT 'not_found'::text, c.status, NULL::bigint, NULL::text, NULL::timestamptz, NULL::bigint, NULL::bigint;
    RETURN;
  END IF;
  -- One statement: its subqueries read the rows as they were before it, so this is a rotation by one place.
  UPDATE chat_queued_messages t
     SET content = coalesce(s.prev_content, x.content), created_at = coalesce(s.prev_created_at, x.created_at)
    FROM (SELECT q.id, lag(q.content) OVER (ORDER BY q.id) AS prev_content, lag(q.created_at) OVER (ORDER BY q.id) AS prev_created_at
            FROM chat_queued_messages q WHERE q.chat_id = p_chat AND q.id <= v_target) s,
         (SELECT q.content, q.created_at FROM chat_queued_messages q WHERE q.id = v_target) x
   WHERE t.id = s.id;
  SELECT q.id, q.content, q.created_at INTO v_head, v_content, v_created FROM chat_queued_messages q WHERE q.chat_id = p_chat ORDER BY q.id LIMIT 1;
  IF c.status IN ('running', 'pending') THEN
    RETURN QUERY SELECT 'queued'::text, c.status, v_head, v_content #>> '{}', v_created, NULL::bigint, NULL::bigint;
    RETURN;
  END IF;
  SELECT coalesce(max(m.id), 0) INTO v_prev FROM chat_messages m WHERE m.chat_id = p_chat;
  DELETE FROM chat_queued_messages WHERE chat_queued_messages.id = v_head;
  INSERT INTO chat_messages (chat_id, role, content) VALUES (p_chat, 'user', v_content) RETURNING chat_messages.id INTO v_message;
  UPDATE chats SET status = 'pending', last_error = NULL, worker_id = NULL, updated_at = now() WHERE chats.id = p_chat;
  RETURN QUERY SELECT 'started'::text, 'pending'::text, v_head, v_content #>> '{}', v_created, v_message, v_prev;
END
$$;
