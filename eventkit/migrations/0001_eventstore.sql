-- The event store: append-only, hash-chained, the source of truth and the audit trail.

CREATE SCHEMA IF NOT EXISTS eventstore;

CREATE TABLE eventstore.events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Assigned at insert, visible at commit: readers tail by (transaction_id,
    -- global_position) below the visibility horizon, never by position alone.
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    district_id     text        NOT NULL,
    category        text        NOT NULL,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version >= 1),
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version >= 1),
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL,
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_tail_idx ON eventstore.events (transaction_id, global_position);
CREATE INDEX events_district_idx ON eventstore.events (district_id, category, global_position);

-- The bytes a link of the chain covers. jsonb's text form is canonical (keys sorted,
-- white space fixed), so the same event always gives the same bytes.
CREATE FUNCTION eventstore.canonical_bytes(e eventstore.events) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to(jsonb_build_object(
        'event_id', e.event_id,
        'stream_id', e.stream_id,
        'stream_version', e.stream_version,
        'district_id', e.district_id,
        'event_type', e.event_type,
        'schema_version', e.schema_version,
        'occurred_at', to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'recorded_at', to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'data', e.data,
        'metadata', e.metadata
    )::text, 'UTF8')
$$;

-- Every insert, whoever makes it, gets the server's transaction id and clock, must
-- follow its stream's previous version, and is chained to it by hash.
CREATE FUNCTION eventstore.before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_prev bytea;
BEGIN
    NEW.transaction_id := pg_current_xact_id();
    NEW.recorded_at := clock_timestamp();
    NEW.category := split_part(NEW.stream_id, '-', 1);
    IF NEW.stream_version = 1 THEN
        v_prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    ELSE
        SELECT hash INTO v_prev FROM eventstore.events
         WHERE stream_id = NEW.stream_id AND stream_version = NEW.stream_version - 1;
        IF v_prev IS NULL THEN
            RAISE EXCEPTION 'stream % has no version % before %',
                NEW.stream_id, NEW.stream_version - 1, NEW.stream_version
                USING ERRCODE = 'MQ004';
        END IF;
    END IF;
    NEW.prev_hash := v_prev;
    NEW.hash := sha256(v_prev || eventstore.canonical_bytes(NEW));
    RETURN NEW;
END $$;

CREATE TRIGGER events_before_insert BEFORE INSERT ON eventstore.events
    FOR EACH ROW EXECUTE FUNCTION eventstore.before_insert();

CREATE FUNCTION eventstore.reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'eventstore.events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'MQ005';
END $$;

CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON eventstore.events
    FOR EACH ROW EXECUTE FUNCTION eventstore.reject_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON eventstore.events
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore.reject_change();

-- Whether the relay is idle, waiting for a notification. Unlogged: after a crash the
-- row is gone and appends stop notifying until the relay sets it again; the relay's
-- polling covers every missed wake-up, so this only ever costs latency.
CREATE UNLOGGED TABLE eventstore.wakeup (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    relay_waiting boolean NOT NULL
);

-- Append to one stream in one call (one round trip).
--   p_expected_version: -1 any, 0 the stream must not exist, n the stream is at n.
-- Errors: MQ001 wrong expected version, MQ002 commit-order inversion (retry in a new
-- transaction), MQ003 an event id already stored with other content, MQ006 the stream
-- belongs to another district.
CREATE FUNCTION eventstore.append(
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

-- Where each reader of the whole store (the relay, a projection) has got to.
CREATE TABLE eventstore.checkpoints (
    name            text PRIMARY KEY,
    transaction_id  xid8   NOT NULL,
    global_position bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The role the services run as: events can be read and added, never changed.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'minqing_runtime') THEN
        CREATE ROLE minqing_runtime NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created meanwhile by a migration of another database on the same server
END $$;

GRANT USAGE ON SCHEMA eventstore TO minqing_runtime;
GRANT SELECT, INSERT ON eventstore.events TO minqing_runtime;
GRANT SELECT, INSERT, UPDATE ON eventstore.checkpoints TO minqing_runtime;
GRANT SELECT, INSERT, UPDATE ON eventstore.wakeup TO minqing_runtime;
