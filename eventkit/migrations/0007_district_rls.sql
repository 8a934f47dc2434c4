-- Row-level security between districts on the event store (issue 14; the mechanism is
-- 0006_district_scope.sql). A transaction of a service's role sees and appends only the
-- events of the district it declared (eventkit.db.scope), or of every district when its
-- work is about all of them by nature and says so ('*': the relay, audits, rebuilds, the
-- group commit below).
--
-- Only eventstore.events holds a district's data here. eventstore.checkpoints (where a
-- reader of the whole store got to), eventstore.wakeup (whether the relay waits),
-- eventstore.authors (who may append what) and consumers.stream_positions (stream ids and
-- versions) hold no district's data and have no district column: they stay as they are.
ALTER TABLE eventstore.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY district_scope ON eventstore.events TO minqing_runtime
    USING (minqing_meta.in_scope(district_id))
    WITH CHECK (minqing_meta.in_scope(district_id));

-- Whether a stream exists in another district than the one given. eventstore.append runs
-- with its caller's rights, so in a transaction scoped to one district another district's
-- stream is invisible to it: without this it would take that stream for a new one and
-- fail on the unique (stream_id, stream_version) instead of refusing with MQ006. Runs
-- with the owner's rights (not subject to the policies) and answers only the question
-- MQ006 answers anyway: nothing of the other stream is returned.
CREATE FUNCTION eventstore.stream_of_other_district(p_stream_id text, p_district_id text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM eventstore.events e
         WHERE e.stream_id = p_stream_id AND e.stream_version = 1
           AND e.district_id <> p_district_id
    )
$$;
REVOKE EXECUTE ON FUNCTION eventstore.stream_of_other_district(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventstore.stream_of_other_district(text, text) TO minqing_runtime;

-- eventstore.append of 0001, unchanged but for the stream's district: a head the caller's
-- scope cannot see is looked for in the whole store (only when none is visible, so an
-- append to a stream of the caller's own district costs nothing more). The insert itself
-- is checked by the policy: an event of a district outside the transaction's scope is
-- refused (SQLSTATE 42501).
CREATE OR REPLACE FUNCTION eventstore.append(
    p_stream_id text,
    p_expected_version bigint,
    p_district_id text,
    p_event_ids uuid[],
    p_event_types text[],
    p_schema_versions integer[],
    p_data jsonb[],
    p_metadata jsonb[],
    p_occurred_at timestamptz[]
) RETURNS TABLE (new_version bigint, duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer := cardinality(p_event_ids);
    v_head bigint;
    v_head_xid xid8;
    v_head_district text;
    v_existing integer;
BEGIN
    -- Appends to one stream are serialised; the xid is taken only after the lock, so
    -- a transaction that waited gets a newer xid than the one it waited for.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_id, 0));

    SELECT count(*) INTO v_existing FROM eventstore.events e WHERE e.event_id = ANY (p_event_ids);
    IF v_existing > 0 THEN
        IF v_existing = v_n AND NOT EXISTS (
            SELECT 1
              FROM unnest(p_event_ids, p_event_types, p_data) AS x(id, t, d)
              LEFT JOIN eventstore.events e ON e.event_id = x.id
             WHERE e.stream_id IS DISTINCT FROM p_stream_id OR e.event_type <> x.t OR e.data <> x.d
        ) THEN
            RETURN QUERY SELECT max(e.stream_version), true
                           FROM eventstore.events e WHERE e.event_id = ANY (p_event_ids);
            RETURN;
        END IF;
        RAISE EXCEPTION 'event id already stored with other content in stream %', p_stream_id
            USING ERRCODE = 'MQ003';
    END IF;

    SELECT e.stream_version, e.transaction_id, e.district_id
      INTO v_head, v_head_xid, v_head_district
      FROM eventstore.events e WHERE e.stream_id = p_stream_id
     ORDER BY e.stream_version DESC LIMIT 1;
    IF v_head IS NULL THEN
        IF eventstore.stream_of_other_district(p_stream_id, p_district_id) THEN
            RAISE EXCEPTION 'stream % belongs to another district', p_stream_id
                USING ERRCODE = 'MQ006';
        END IF;
    END IF;
    v_head := coalesce(v_head, 0);

    IF p_expected_version >= 0 AND v_head <> p_expected_version THEN
        RAISE EXCEPTION 'stream % is at version %, expected %', p_stream_id, v_head, p_expected_version
            USING ERRCODE = 'MQ001', DETAIL = v_head::text;
    END IF;
    IF v_head_district IS NOT NULL AND v_head_district <> p_district_id THEN
        RAISE EXCEPTION 'stream % belongs to another district', p_stream_id USING ERRCODE = 'MQ006';
    END IF;
    -- The one inversion the horizon allows: this transaction got its xid before the
    -- head's writer (it wrote something else first). Delivering by xid would put our
    -- later version first; refuse, the caller retries in a new transaction.
    IF v_head_xid IS NOT NULL AND v_head_xid > pg_current_xact_id() THEN
        RAISE EXCEPTION 'stream % was appended by a newer transaction', p_stream_id
            USING ERRCODE = 'MQ002';
    END IF;

    INSERT INTO eventstore.events (district_id, category, stream_id, stream_version, event_id,
                                   event_type, schema_version, data, metadata, occurred_at,
                                   prev_hash, hash)
    SELECT p_district_id, '', p_stream_id, v_head + x.i, x.id, x.t, x.sv, x.d, x.m, x.o, '', ''
      FROM unnest(p_event_ids, p_event_types, p_schema_versions, p_data, p_metadata, p_occurred_at)
           WITH ORDINALITY AS x(id, t, sv, d, m, o, i)
     ORDER BY x.i;

    -- Wake the relay only when it waits: a NOTIFY takes a cluster-wide lock held
    -- across the commit, which would serialise every append under load.
    IF (SELECT w.relay_waiting FROM eventstore.wakeup w) THEN
        PERFORM pg_notify('minqing_events', '');
    END IF;
    RETURN QUERY SELECT v_head + v_n, false;
END $$;

-- The group commit of 0005, with the scope its statement runs in. The store sends a group
-- as one statement in a transaction of its own (one round trip), so that statement must
-- declare its scope itself: p_scope, set for the rest of the transaction before the first
-- append. The store's client passes '*' (eventkit.db.ALL_DISTRICTS): a group holds several
-- districts' appends, and each append still refuses a stream of another district (MQ006)
-- and cannot change a stream's district. NULL keeps the caller's scope.
DROP FUNCTION eventstore.append_many(text[], bigint[], text[], integer[], uuid[], text[],
                                     integer[], jsonb[], jsonb[], timestamptz[]);
CREATE FUNCTION eventstore.append_many(
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
    v_from integer := 1;
    v_to integer;
BEGIN
    IF p_scope IS NOT NULL THEN
        PERFORM set_config('minqing.district', p_scope, true);
    END IF;
    FOR i IN 1 .. coalesce(cardinality(p_stream_ids), 0) LOOP
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
