-- A station's token taken at the submission's commit, inside the server
-- (services/intake/station_guard.py).
--
-- The station's bucket is one row that every submission through the station updates, and
-- an updated row stays locked until its transaction ends. Taken by a statement of its
-- own, the last before the commit, the row stayed locked for two round trips to intake
-- and back (the statement's answer, then the COMMIT), each waiting its turn in intake's
-- event loop behind the other requests: under bench/intake.py (32 clients, one station)
-- the statement waited 34-53 ms per call, the submissions through one station were
-- serialised on that wait, and the queue of waiters on the row cost PostgreSQL about
-- 0.4 ms of CPU per submission (1.86 against 1.44 ms without the station's token,
-- measured back to back).
--
-- Now the submission declares the token it needs (the transaction-local setting
-- minqing.station_token: district, station, burst, rate per second and the moment, as
-- JSON) and this deferred trigger takes it while the transaction commits: the row is
-- locked from there to the end of the commit, with no round trip in between. The bucket
-- and its arithmetic are those of services/intake/ratelimit.py (bucket_statement):
-- refilled at the rate since its last update, capped at the burst, one token taken,
-- nothing changed when less than one is there. A bucket without a token refuses the
-- commit (SQLSTATE MQ201, the tokens there were in DETAIL): the whole submission rolls
-- back, as when the statement refused it before the commit, and intake answers as
-- before (429 or a challenge). One token per transaction: the setting is cleared once
-- taken. Without the setting (staff channels, the 12345 import, stations' submissions of
-- earlier versions) the trigger does nothing.
--
-- The trigger runs with the caller's rights, in the transaction's district scope: the
-- bucket's row-level security holds as before.
CREATE FUNCTION intake.take_station_token() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_raw text := current_setting('minqing.station_token', true);
    v_claim jsonb;
    v_district text;
    v_station text;
    v_burst float8;
    v_rate float8;
    v_now timestamptz;
    v_taken boolean;
    v_had float8;
BEGIN
    IF v_raw IS NULL OR v_raw = '' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('minqing.station_token', '', true);
    v_claim := v_raw::jsonb;
    v_district := v_claim ->> 'district_id';
    v_station := v_claim ->> 'station_code';
    v_burst := (v_claim ->> 'burst')::float8;
    v_rate := (v_claim ->> 'rate')::float8;
    v_now := (v_claim ->> 'now')::timestamptz;

    INSERT INTO intake.station_rate_buckets AS b (district_id, station_code, tokens, updated_at)
    VALUES (v_district, v_station, v_burst - 1, v_now)
    ON CONFLICT (district_id, station_code) DO UPDATE
       SET tokens = LEAST(v_burst, b.tokens
                          + GREATEST(0, EXTRACT(EPOCH FROM v_now - b.updated_at)::float8) * v_rate) - 1,
           updated_at = GREATEST(b.updated_at, v_now)
     WHERE LEAST(v_burst, b.tokens
                 + GREATEST(0, EXTRACT(EPOCH FROM v_now - b.updated_at)::float8) * v_rate) >= 1
    RETURNING true INTO v_taken;
    IF v_taken IS NULL THEN
        SELECT LEAST(v_burst, s.tokens
                     + GREATEST(0, EXTRACT(EPOCH FROM v_now - s.updated_at)::float8) * v_rate)
          INTO v_had
          FROM intake.station_rate_buckets s
         WHERE s.district_id = v_district AND s.station_code = v_station;
        RAISE EXCEPTION 'station % of district % has no submission left for now', v_station, v_district
            USING ERRCODE = 'MQ201', DETAIL = coalesce(v_had, 0)::text;
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER opinions_station_token
    AFTER INSERT ON intake.opinions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION intake.take_station_token();
