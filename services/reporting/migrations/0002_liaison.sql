-- The liaison work in the reports (docs/liaison.md, docs/metrics.md): representatives'
-- activities (the registers 六簿一表, the archive, the station assessment), the facts of
-- the registers of representatives and suggestions, callbacks (回访) as ratings taken by
-- staff, and the stations' QR scans against the opinions submitted from them (扫码量).
-- Same layout as 0001: every table partitioned by slot, in both schemas.

DO $$
DECLARE
    s text;
    t text;
BEGIN
    FOREACH s IN ARRAY ARRAY['reporting', 'reporting_asof'] LOOP
        -- The representative register (代表信息) needs their electoral district and
        -- whether they are a leading cadre.
        EXECUTE format('ALTER TABLE %I.representatives
            ADD COLUMN electoral_district text,
            ADD COLUMN leading_cadre boolean NOT NULL DEFAULT false', s);

        -- A case's latest callback (回访: a rating staff took down), and who answered its
        -- suggestion (承办单位).
        EXECUTE format('ALTER TABLE %I.cases
            ADD COLUMN callback_seq integer,
            ADD COLUMN callback_satisfaction smallint,
            ADD COLUMN callback_resolved boolean,
            ADD COLUMN callback_at timestamptz,
            ADD COLUMN suggestion_answered_by text', s);

        -- Representatives' activities at stations (ActivityRecorded, station-* streams):
        -- part of the directory projection. Counts of residents only, never who.
        EXECUTE format($q$
            CREATE TABLE %I.activities (
                slot            smallint NOT NULL,
                district_id     text NOT NULL,
                activity_id     text NOT NULL,
                station_code    text NOT NULL,
                kind            text NOT NULL,
                title           text NOT NULL,
                held_on         date NOT NULL,
                starts_at       time,
                ends_at         time,
                representatives text[] NOT NULL,
                spokespersons   text[] NOT NULL,
                residents_met   integer NOT NULL,
                opinions_taken  integer NOT NULL,
                summary         text,
                recorded_at     timestamptz NOT NULL,
                PRIMARY KEY (slot, district_id, activity_id)
            ) PARTITION BY LIST (slot)$q$, s);
        EXECUTE format(
            'CREATE INDEX ON %I.activities (slot, district_id, station_code, held_on)', s);

        -- Each station's QR page views and the opinions submitted from it, per local day
        -- (QrScansRecorded, qrscans-* streams: the day's totals, the latest event wins).
        EXECUTE format($q$
            CREATE TABLE %I.scans (
                slot         smallint NOT NULL,
                district_id  text NOT NULL,
                station_code text NOT NULL,
                day          date NOT NULL,
                scans        integer NOT NULL,
                opinions     integer NOT NULL,
                recorded_at  timestamptz NOT NULL,
                PRIMARY KEY (slot, district_id, station_code, day)
            ) PARTITION BY LIST (slot)$q$, s);

        FOREACH t IN ARRAY ARRAY['activities', 'scans'] LOOP
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES IN (0)',
                           s, t || '_s0', s, t);
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES IN (1)',
                           s, t || '_s1', s, t);
        END LOOP;

        EXECUTE format($q$INSERT INTO %I.projections (name, slot) VALUES ('scans', 0)$q$, s);
    END LOOP;
END $$;

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, MAINTAIN
    ON ALL TABLES IN SCHEMA reporting, reporting_asof TO minqing_runtime;
