-- A send or create on a replica whose worker has room claims its turn in its own statement (issue #17): the chat goes
-- from idle to `running` without a `pending` step in between, which saves the claim statement, one status change on
-- every stream and the owner's list, and their notices. Without a worker (that replica is full) the chat goes
-- `pending` as before, and any replica's worker claims it with acquirePendingChats.

-- The latest `p_limit` messages of a chat, oldest first, as a claimed turn sends them to the model.
CREATE FUNCTION chat_history(p_chat uuid, p_limit int) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('role', h.role, 'content', h.content) ORDER BY h.id), '[]'::jsonb)
    FROM (SELECT m.id, m.role, m.content FROM chat_messages m WHERE m.chat_id = p_chat ORDER BY m.id DESC LIMIT p_limit) h
$$;

DROP FUNCTION chat_send_message(uuid, uuid, text, int);

-- As in 0008, but a turn the send starts goes `running` on `p_worker` when one is given, in the same UPDATE (the row,
-- its indexes and its trigger are written once, not once for `pending` and again for the claim).
CREATE FUNCTION chat_send_message(p_chat uuid, p_owner uuid, p_content text, p_queue_limit int, p_worker text)
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
    IF p_worker IS NULL THEN
      UPDATE chats SET status = 'pending', last_error = NULL, last_error_kind = NULL, worker_id = NULL, updated_at = now()
       WHERE chats.id = p_chat RETURNING * INTO c;
    ELSE
      -- As acquirePendingChats claims a chat: a new run, heartbeating from now.
      UPDATE chats SET status = 'running', worker_id = p_worker, started_at = now(), heartbeat_at = now(), last_error = NULL,
                       last_error_kind = NULL, generation = chats.generation + 1, updated_at = now()
       WHERE chats.id = p_chat RETURNING * INTO c;
    END IF;
  END IF;
  RETURN QUERY SELECT c.id, c.owner_id, c.title, c.status, c.worker_id, c.started_at, c.heartbeat_at, c.last_model_config_id,
    c.last_error, c.archived, c.created_at, c.updated_at, c.generation, c.version, c.last_error_kind, c.retry_attempt,
    c.retry_kind, c.retry_delay_ms, c.retrying_at,
    v_outcome, v_item, v_item_at, v_prev, v_promoted, v_queued #>> '{}', v_promoted_at;
END
$$;

DROP FUNCTION chat_send_batch(uuid[], uuid[], text[], int, text[], text[]);
DROP FUNCTION chat_send(uuid, uuid, text, int, text, text);

-- As in 0009, and a turn the send starts is claimed for `p_worker` when one is given. A retry's stored answer keeps
-- the row, not the history.
CREATE FUNCTION chat_send(p_chat uuid, p_owner uuid, p_content text, p_queue_limit int, p_key text, p_fingerprint text,
                          p_worker text, p_history int, OUT result jsonb, OUT replay jsonb)
LANGUAGE plpgsql AS $$
BEGIN
  IF p_key IS NOT NULL THEN
    replay := idempotency_claim(p_owner, p_key, p_fingerprint);
    IF replay IS NOT NULL THEN
      RETURN;
    END IF;
  END IF;
  SELECT to_jsonb(s) INTO result FROM chat_send_message(p_chat, p_owner, p_content, p_queue_limit, p_worker) s;
  IF p_worker IS NOT NULL AND result->>'outcome' IN ('started', 'promoted') THEN
    result := result || jsonb_build_object('history', chat_history(p_chat, p_history));
  END IF;
  IF p_key IS NOT NULL THEN
    IF result IS NULL OR result->>'outcome' IN ('full', 'archived') THEN
      DELETE FROM idempotency_keys k WHERE k.user_id = p_owner AND k.key = p_key;
    ELSE
      UPDATE idempotency_keys k SET result = chat_send.result - 'history' WHERE k.user_id = p_owner AND k.key = p_key;
    END IF;
  END IF;
END
$$;

-- `p_claims[i]`: send i may claim its turn for `p_worker`.
CREATE FUNCTION chat_send_batch(p_chats uuid[], p_owners uuid[], p_contents text[], p_queue_limit int, p_keys text[], p_fingerprints text[],
                                p_claims boolean[], p_worker text, p_history int)
RETURNS TABLE (idx int, result jsonb, replay jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  i int;
BEGIN
  FOR i IN SELECT s.i FROM generate_subscripts(p_chats, 1) AS s(i) ORDER BY p_chats[s.i], s.i LOOP
    RETURN QUERY SELECT i, s.result, s.replay
      FROM chat_send(p_chats[i], p_owners[i], p_contents[i], p_queue_limit, p_keys[i], p_fingerprints[i], CASE WHEN p_claims[i] THEN p_worker END, p_history) s;
  END LOOP;
END
$$;

DROP FUNCTION chat_create_batch(uuid[], text[], uuid[], text[], text[], text[]);
DROP FUNCTION chat_create(uuid, text, uuid, text, text, text);

-- As in 0009; with `p_worker` the new chat starts `running` on it, its first run being generation 1 as a claim makes it.
CREATE FUNCTION chat_create(p_owner uuid, p_title text, p_model uuid, p_message text, p_key text, p_fingerprint text, p_worker text,
                            OUT result jsonb, OUT replay jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  c chats%ROWTYPE;
BEGIN
  IF p_key IS NOT NULL THEN
    replay := idempotency_claim(p_owner, p_key, p_fingerprint);
    IF replay IS NOT NULL THEN
      RETURN;
    END IF;
  END IF;
  IF p_worker IS NULL THEN
    INSERT INTO chats (owner_id, title, status, last_model_config_id) VALUES (p_owner, p_title, 'pending', p_model) RETURNING * INTO c;
  ELSE
    INSERT INTO chats (owner_id, title, status, last_model_config_id, worker_id, started_at, heartbeat_at, generation)
      VALUES (p_owner, p_title, 'running', p_model, p_worker, now(), now(), 1) RETURNING * INTO c;
  END IF;
  INSERT INTO chat_messages (chat_id, role, content) VALUES (c.id, 'user', to_jsonb(p_message));
  result := to_jsonb(c);
  IF p_key IS NOT NULL THEN
    UPDATE idempotency_keys k SET result = chat_create.result WHERE k.user_id = p_owner AND k.key = p_key;
  END IF;
END
$$;

CREATE FUNCTION chat_create_batch(p_owners uuid[], p_titles text[], p_models uuid[], p_messages text[], p_keys text[], p_fingerprints text[],
                                  p_claims boolean[], p_worker text)
RETURNS TABLE (idx int, result jsonb, replay jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  i int;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_owners, 1), 0) LOOP
    RETURN QUERY SELECT i, s.result, s.replay
      FROM chat_create(p_owners[i], p_titles[i], p_models[i], p_messages[i], p_keys[i], p_fingerprints[i], CASE WHEN p_claims[i] THEN p_worker END) s;
  END LOOP;
END
$$;
