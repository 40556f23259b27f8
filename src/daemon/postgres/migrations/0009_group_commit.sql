-- Group commit (issue #17): the creates, sends and turn ends that arrive in the same moment go to PostgreSQL as one
-- statement, as the pubsub already batches NOTIFY. A keyed send is one statement too: it claims its Idempotency-Key,
-- sends and stores what it did, where it had been BEGIN, claim, send, store, COMMIT.
--
-- A keyed send stores its result row (`result`), from which a retry's answer is rendered exactly as the first one
-- was; `status` and `response` stay for creates and for keys stored before this migration.
ALTER TABLE idempotency_keys ADD COLUMN result jsonb;

-- Claims an Idempotency-Key for the statement's work: NULL when claimed, else the earlier request's key row.
CREATE FUNCTION idempotency_claim(p_user uuid, p_key text, p_fingerprint text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_replay jsonb;
BEGIN
  INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES (p_user, p_key, p_fingerprint) ON CONFLICT (user_id, key) DO NOTHING;
  IF FOUND THEN
    RETURN NULL;
  END IF;
  -- A new statement, so a new snapshot: it sees the row of the request that held the key and committed.
  SELECT jsonb_build_object('fingerprint', k.fingerprint, 'status', k.status, 'response', k.response, 'result', k.result)
    INTO v_replay FROM idempotency_keys k WHERE k.user_id = p_user AND k.key = p_key;
  RETURN v_replay;
END
$$;

-- One send, keyed or not. `result` is chat_send_message's row as JSON (NULL: no such chat of this owner); `replay`
-- is the earlier request's key row when the key was seen. An outcome that changes nothing (no chat, archived, queue
-- full) gives the key back, as the rollback of a failed request would.
CREATE FUNCTION chat_send(p_chat uuid, p_owner uuid, p_content text, p_queue_limit int, p_key text, p_fingerprint text,
                          OUT result jsonb, OUT replay jsonb)
LANGUAGE plpgsql AS $$
BEGIN
  IF p_key IS NOT NULL THEN
    replay := idempotency_claim(p_owner, p_key, p_fingerprint);
    IF replay IS NOT NULL THEN
      RETURN;
    END IF;
  END IF;
  SELECT to_jsonb(s) INTO result FROM chat_send_message(p_chat, p_owner, p_content, p_queue_limit) s;
  IF p_key IS NOT NULL THEN
    IF result IS NULL OR result->>'outcome' IN ('full', 'archived') THEN
      DELETE FROM idempotency_keys k WHERE k.user_id = p_owner AND k.key = p_key;
    ELSE
      UPDATE idempotency_keys k SET result = chat_send.result WHERE k.user_id = p_owner AND k.key = p_key;
    END IF;
  END IF;
END
$$;

-- One new chat with its first message, keyed or not; `result` is the chat row as JSON.
CREATE FUNCTION chat_create(p_owner uuid, p_title text, p_model uuid, p_message text, p_key text, p_fingerprint text,
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
  INSERT INTO chats (owner_id, title, status, last_model_config_id) VALUES (p_owner, p_title, 'pending', p_model) RETURNING * INTO c;
  INSERT INTO chat_messages (chat_id, role, content) VALUES (c.id, 'user', to_jsonb(p_message));
  result := to_jsonb(c);
  IF p_key IS NOT NULL THEN
    UPDATE idempotency_keys k SET result = chat_create.result WHERE k.user_id = p_owner AND k.key = p_key;
  END IF;
END
$$;

CREATE FUNCTION chat_create_batch(p_owners uuid[], p_titles text[], p_models uuid[], p_messages text[], p_keys text[], p_fingerprints text[])
RETURNS TABLE (idx int, result jsonb, replay jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  i int;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_owners, 1), 0) LOOP
    RETURN QUERY SELECT i, s.result, s.replay FROM chat_create(p_owners[i], p_titles[i], p_models[i], p_messages[i], p_keys[i], p_fingerprints[i]) s;
  END LOOP;
END
$$;

-- Sends in one statement, in the order of their chats (then of arrival): every writer that locks several chat rows
-- takes them in id order, so two batches cannot deadlock.
CREATE FUNCTION chat_send_batch(p_chats uuid[], p_owners uuid[], p_contents text[], p_queue_limit int, p_keys text[], p_fingerprints text[])
RETURNS TABLE (idx int, result jsonb, replay jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  i int;
BEGIN
  FOR i IN SELECT s.i FROM generate_subscripts(p_chats, 1) AS s(i) ORDER BY p_chats[s.i], s.i LOOP
    RETURN QUERY SELECT i, s.result, s.replay FROM chat_send(p_chats[i], p_owners[i], p_contents[i], p_queue_limit, p_keys[i], p_fingerprints[i]) s;
  END LOOP;
END
$$;

-- Turn ends in one statement, in chat id order; a chat no longer the worker's has no row.
CREATE FUNCTION chat_end_turns(p_chats uuid[], p_worker text, p_texts text[], p_errors text[], p_error_kinds text[])
RETURNS TABLE (idx int, result jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  i int;
BEGIN
  FOR i IN SELECT s.i FROM generate_subscripts(p_chats, 1) AS s(i) ORDER BY p_chats[s.i], s.i LOOP
    RETURN QUERY SELECT i, to_jsonb(e) FROM chat_end_turn(p_chats[i], p_worker, p_texts[i], p_errors[i], p_error_kinds[i]) e;
  END LOOP;
END
$$;
