-- A chat can wait with messages still queued (an interrupt or an errored turn promotes none). A message sent to it
-- then goes behind them and the oldest one starts: messages run in the order they were sent, and none is stranded.
DROP FUNCTION chat_send_message(uuid, uuid, text, int);

CREATE FUNCTION chat_send_message(p_chat uuid, p_owner uuid, p_content text, p_queue_limit int)
RETURNS TABLE (
  id uuid, owner_id uuid, title text, status text, worker_id text, started_at timestamptz, heartbeat_at timestamptz,
  last_model_config_id uuid, last_error text, archived boolean, created_at timestamptz, updated_at timestamptz,
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
      v_outcome := 'queued';
    END IF;
  ELSE
    SELECT coalesce(max(m.id), 0) INTO v_prev FROM chat_messages m WHERE m.chat_id = p_chat;
    -- The head of the queue starts first; the new message takes its place at the tail, so this never fills the queue.
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
    UPDATE chats SET status = 'pending', last_error = NULL, worker_id = NULL, updated_at = now() WHERE chats.id = p_chat RETURNING * INTO c;
  END IF;
  RETURN QUERY SELECT c.id, c.owner_id, c.title, c.status, c.worker_id, c.started_at, c.heartbeat_at, c.last_model_config_id,
    c.last_error, c.archived, c.created_at, c.updated_at, v_outcome, v_item, v_item_at, v_prev, v_promoted, v_queued #>> '{}', v_promoted_at;
END
$$;
