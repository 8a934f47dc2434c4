-- Group commit: several appends, to several streams, in one call and one transaction.
-- Each append runs as eventstore.append would on its own (its lock, its expected
-- version, its idempotent ids, its district and author checks) in a subtransaction, so
-- one append's refusal rolls back that append only and is returned as its row; the
-- others commit together. Used by the store's client to coalesce the concurrent appends
-- of one process into one round trip and one commit (see eventkit/store.py).
--
-- A group never waits for a stream's lock while it holds another: only the first append
-- may wait; a later one whose stream is locked by another transaction is left out with
-- MQ008 ("busy"), and the client sends it again, first of the next group. So a group
-- can never close a cycle of waits with transactions that lock several streams in an
-- order of their own: without this, such a transaction could be chosen as the victim of
-- a deadlock the group made.
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
    p_occurred_at timestamptz[]
) RETURNS TABLE (new_version bigint, duplicate boolean, error_code text,
                 error_message text, error_detail text)
LANGUAGE plpgsql AS $$
DECLARE
    v_from integer := 1;
    v_to integer;
BEGIN
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
