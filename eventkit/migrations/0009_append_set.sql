-- Appends to several streams as one set: one statement per check for the whole set, one
-- INSERT for all its events, no subtransaction per append (issue 12).
--
-- eventstore.append_many (0005, 0007) ran eventstore.append once per append, each in a
-- subtransaction of its own: with single-event appends that was 0.07 ms of the server's
-- time per append before its row was inserted (the PL/pgSQL call, the savepoint, the
-- duplicate check, the head, the checks), measured with track_functions in
-- bench/eventstore.py. eventstore.append_set does the same work once per set:
--
--   1. the streams' locks, in the order given (as that many calls of eventstore.append);
--   2. whether any event id is already stored: if so, or if a stream comes twice, the
--      appends go one by one through eventstore.append, which knows a repeated append
--      (idempotent) and a reused id (MQ003), and a later append of the same stream
--      follows the earlier one;
--   3. the heads of all the streams in one lateral lookup;
--   4. each append's checks, with eventstore.append's codes and messages: MQ006 (another
--      district's stream), MQ001 (wrong expected version), MQ002 (commit-order
--      inversion);
--   5. one INSERT of every event, each at its stream's head plus its place in its append;
--      the row trigger chains each to the row before it (rows inserted earlier by the
--      same statement are visible to it).
--
-- All or none: the first refusal raises and nothing of the set stays. Returns one row
-- per append, in the order given.
CREATE FUNCTION eventstore.append_set(
    p_stream_ids text[],
    p_expected_versions bigint[],
    p_district_ids text[],
    p_counts integer[],
    p_event_ids uuid[],
    p_event_types text[],
    p_schema_versions integer[],
    p_data jsonb[],
    p_metadata jsonb[],
    p_occurred_at timestamptz[]
) RETURNS TABLE (new_version bigint, duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer := coalesce(cardinality(p_stream_ids), 0);
    v_stream text;
    v_heads bigint[];
    v_xids xid8[];
    v_districts text[];
    v_xid xid8;
    v_from integer := 1;
    v_to integer;
BEGIN
    IF v_n = 0 THEN
        RETURN;
    END IF;
    -- Appends to one stream are serialised; the xid is taken only after the locks.
    FOREACH v_stream IN ARRAY p_stream_ids LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended(v_stream, 0));
    END LOOP;

    IF EXISTS (SELECT 1 FROM eventstore.events e WHERE e.event_id = ANY (p_event_ids))
       OR (v_n > 1 AND (SELECT count(DISTINCT s) FROM unnest(p_stream_ids) s) < v_n) THEN
        FOR i IN 1 .. v_n LOOP
            v_to := v_from + p_counts[i] - 1;
            RETURN QUERY
                SELECT a.new_version, a.duplicate
                  FROM eventstore.append(p_stream_ids[i], p_expected_versions[i],
                                         p_district_ids[i], p_event_ids[v_from:v_to],
                                         p_event_types[v_from:v_to],
                                         p_schema_versions[v_from:v_to], p_data[v_from:v_to],
                                         p_metadata[v_from:v_to], p_occurred_at[v_from:v_to]) a;
            v_from := v_to + 1;
        END LOOP;
        RETURN;
    END IF;

    SELECT array_agg(h.stream_version ORDER BY u.i), array_agg(h.transaction_id ORDER BY u.i),
           array_agg(h.district_id ORDER BY u.i)
      INTO v_heads, v_xids, v_districts
      FROM unnest(p_stream_ids) WITH ORDINALITY AS u(s, i)
      LEFT JOIN LATERAL (
            SELECT e.stream_version, e.transaction_id, e.district_id
              FROM eventstore.events e
             WHERE e.stream_id = u.s
             ORDER BY e.stream_version DESC
             LIMIT 1) h ON true;

    FOR i IN 1 .. v_n LOOP
        IF v_heads[i] IS NULL THEN
            IF eventstore.stream_of_other_district(p_stream_ids[i], p_district_ids[i]) THEN
                RAISE EXCEPTION 'stream % belongs to another district', p_stream_ids[i]
                    USING ERRCODE = 'MQ006';
            END IF;
            v_heads[i] := 0;
        END IF;
        IF p_expected_versions[i] >= 0 AND v_heads[i] <> p_expected_versions[i] THEN
            RAISE EXCEPTION 'stream % is at version %, expected %',
                p_stream_ids[i], v_heads[i], p_expected_versions[i]
                USING ERRCODE = 'MQ001', DETAIL = v_heads[i]::text;
        END IF;
        IF v_districts[i] IS NOT NULL AND v_districts[i] <> p_district_ids[i] THEN
            RAISE EXCEPTION 'stream % belongs to another district', p_stream_ids[i]
                USING ERRCODE = 'MQ006';
        END IF;
        IF v_xids[i] IS NOT NULL THEN
            v_xid := coalesce(v_xid, pg_current_xact_id());
            IF v_xids[i] > v_xid THEN
                RAISE EXCEPTION 'stream % was appended by a newer transaction', p_stream_ids[i]
                    USING ERRCODE = 'MQ002';
            END IF;
        END IF;
    END LOOP;

    INSERT INTO eventstore.events (district_id, category, stream_id, stream_version, event_id,
                                   event_type, schema_version, data, metadata, occurred_at,
                                   prev_hash, hash)
    SELECT p_district_ids[a.i], '', p_stream_ids[a.i], v_heads[a.i] + a.p,
           x.id, x.t, x.sv, x.d, x.m, x.o, '', ''
      FROM unnest(p_event_ids, p_event_types, p_schema_versions, p_data, p_metadata,
                  p_occurred_at) WITH ORDINALITY AS x(id, t, sv, d, m, o, k)
      JOIN (SELECT row_number() OVER (ORDER BY c.i, g.p) AS k, c.i, g.p
              FROM unnest(p_counts) WITH ORDINALITY AS c(n, i)
             CROSS JOIN LATERAL generate_series(1, c.n) AS g(p)) a ON a.k = x.k
     ORDER BY x.k;

    -- Wake the relay only when it waits (see eventstore.append).
    IF (SELECT w.relay_waiting FROM eventstore.wakeup w) THEN
        PERFORM pg_notify('minqing_events', '');
    END IF;
    RETURN QUERY SELECT v_heads[i] + p_counts[i], false
                   FROM generate_subscripts(p_stream_ids, 1) AS i ORDER BY i;
END $$;

-- As for eventstore.append (0008): the statements' generic plans, planned once per
-- connection (a custom plan for "event_id = ANY (...)" was planned at every call).
ALTER FUNCTION eventstore.append_set(text[], bigint[], text[], integer[], uuid[], text[],
                                     integer[], jsonb[], jsonb[], timestamptz[])
    SET plan_cache_mode = force_generic_plan;

GRANT EXECUTE ON FUNCTION eventstore.append_set(text[], bigint[], text[], integer[], uuid[],
                                                 text[], integer[], jsonb[], jsonb[],
                                                 timestamptz[]) TO minqing_runtime;

-- The group commit (0007) with the set first: when every stream of the group could be
-- locked (the first may wait, the others only if free), the whole group goes through
-- eventstore.append_set in one subtransaction. Only when that set is refused (one of its
-- appends fails a check, or its insert fails) does the group go one append per
-- subtransaction as before, so that each refusal rolls back its own append only. A
-- group with a busy stream goes one by one at once (the busy append comes back MQ008).
CREATE OR REPLACE FUNCTION eventstore.append_many(
    p_stream_ids text[],
    p_expected_versions bigint[],
    p_district_ids text[],
    p_counts integer[],
    p_event_ids uuid[],
    p_event_types text[],
    p_schema_versions integer[],
    p_data jsonb[],
    p_metadata jsonb[],
    p_occurred_at timestamptz[],
    p_scope text DEFAULT NULL
) RETURNS TABLE (new_version bigint, duplicate boolean, error_code text,
                 error_message text, error_detail text)
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer := coalesce(cardinality(p_stream_ids), 0);
    v_from integer := 1;
    v_to integer;
    v_all_locked boolean := true;
    v_versions bigint[];
    v_duplicates boolean[];
BEGIN
    IF p_scope IS NOT NULL THEN
        PERFORM set_config('minqing.district', p_scope, true);
    END IF;
    IF v_n = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_ids[1], 0));
    FOR i IN 2 .. v_n LOOP
        IF NOT pg_try_advisory_xact_lock(hashtextextended(p_stream_ids[i], 0)) THEN
            v_all_locked := false;
            EXIT;
        END IF;
    END LOOP;

    IF v_all_locked THEN
        BEGIN
            SELECT array_agg(a.new_version ORDER BY a.o), array_agg(a.duplicate ORDER BY a.o)
              INTO v_versions, v_duplicates
              FROM eventstore.append_set(p_stream_ids, p_expected_versions, p_district_ids,
                                         p_counts, p_event_ids, p_event_types,
                                         p_schema_versions, p_data, p_metadata,
                                         p_occurred_at) WITH ORDINALITY AS a(new_version, duplicate, o);
        EXCEPTION WHEN OTHERS THEN
            v_versions := NULL;
        END;
        IF v_versions IS NOT NULL THEN
            RETURN QUERY SELECT v_versions[i], v_duplicates[i], NULL::text, NULL::text, NULL::text
                           FROM generate_subscripts(v_versions, 1) AS i ORDER BY i;
            RETURN;
        END IF;
    END IF;

    FOR i IN 1 .. v_n LOOP
        v_to := v_from + p_counts[i] - 1;
        error_code := NULL;
        error_message := NULL;
        error_detail := NULL;
        IF i > 1 AND NOT pg_try_advisory_xact_lock(hashtextextended(p_stream_ids[i], 0)) THEN
            error_code := 'MQ008';
            error_message := format('stream %s is being appended to by another transaction',
                                    p_stream_ids[i]);
            new_version := NULL;
            duplicate := NULL;
            RETURN NEXT;
            v_from := v_to + 1;
            CONTINUE;
        END IF;
        BEGIN
            SELECT a.new_version, a.duplicate INTO new_version, duplicate
              FROM eventstore.append(p_stream_ids[i], p_expected_versions[i], p_district_ids[i],
                                     p_event_ids[v_from:v_to], p_event_types[v_from:v_to],
                                     p_schema_versions[v_from:v_to], p_data[v_from:v_to],
                                     p_metadata[v_from:v_to], p_occurred_at[v_from:v_to]) a;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS error_code = RETURNED_SQLSTATE,
                                    error_message = MESSAGE_TEXT,
                                    error_detail = PG_EXCEPTION_DETAIL;
            new_version := NULL;
            duplicate := NULL;
        END;
        RETURN NEXT;
        v_from := v_to + 1;
    END LOOP;
END $$;
