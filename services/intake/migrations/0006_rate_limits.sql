-- Rate limits shared by every intake replica, and the QR form's proof-of-work
-- (services/intake/ratelimit.py, services/intake/station_guard.py).
--
-- Buckets are updated in place by one statement per check; they are small rows whose
-- indexed columns never change, so the updates stay HOT (fillfactor leaves them room)
-- and the sweeper finds idle rows by scanning, with no index on the time.
--
-- The buckets are UNLOGGED: they write no WAL, so a check in autocommit commits without
-- waiting for a flush and a hot row (one client, one station) is locked for
-- microseconds. What that costs: after a crash or a failover the buckets are empty,
-- which is every client and station starting with a full bucket. The guards and the
-- spent challenges are ordinary tables: they must survive both.

-- One token bucket per public limit ('submit', 'read') and client. The client is a
-- keyed hash of its address (HMAC-SHA256 with a key derived from
-- MINQING_INTAKE_HASH_KEY, 16 bytes), never the address: an address is personal data.
-- A client is no district's: no row-level security.
CREATE UNLOGGED TABLE intake.rate_buckets (
    bucket     text             NOT NULL,
    client     bytea            NOT NULL,
    tokens     double precision NOT NULL,
    updated_at timestamptz      NOT NULL,
    PRIMARY KEY (bucket, client)
) WITH (fillfactor = 50);

-- One token bucket per station: its QR code's submissions from every address together.
CREATE UNLOGGED TABLE intake.station_rate_buckets (
    district_id  text             NOT NULL,
    station_code text             NOT NULL,
    tokens       double precision NOT NULL,
    updated_at   timestamptz      NOT NULL,
    PRIMARY KEY (district_id, station_code)
) WITH (fillfactor = 50);

-- A station's guard: its QR form asks for a proof-of-work of this difficulty until
-- `until` (NULL: until switched off). `manual`: a district admin; `auto`: the station's
-- limit tripped.
CREATE TABLE intake.station_guards (
    district_id  text        NOT NULL,
    station_code text        NOT NULL,
    difficulty   integer     NOT NULL CHECK (difficulty BETWEEN 1 AND 28),
    mode         text        NOT NULL CHECK (mode IN ('manual', 'auto')),
    until        timestamptz,
    set_by       text        NOT NULL,
    set_at       timestamptz NOT NULL,
    PRIMARY KEY (district_id, station_code)
);

-- The challenges already solved and used: each is good for one submission. Kept until
-- it expires (after that its signature refuses it anyway).
CREATE TABLE intake.spent_challenges (
    challenge_id bytea       PRIMARY KEY,
    district_id  text        NOT NULL,
    expires_at   timestamptz NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE
    ON intake.rate_buckets, intake.station_rate_buckets, intake.station_guards,
       intake.spent_challenges
    TO minqing_runtime;

-- A district's stations and what was spent on them: row-level security
-- (eventkit/migrations/0006_district_scope.sql).
ALTER TABLE intake.station_rate_buckets ENABLE ROW LEVEL SECURITY;
CREATE POLICY district_scope ON intake.station_rate_buckets TO minqing_runtime
    USING (minqing_meta.in_scope(district_id))
    WITH CHECK (minqing_meta.in_scope(district_id));

ALTER TABLE intake.station_guards ENABLE ROW LEVEL SECURITY;
CREATE POLICY district_scope ON intake.station_guards TO minqing_runtime
    USING (minqing_meta.in_scope(district_id))
    WITH CHECK (minqing_meta.in_scope(district_id));

ALTER TABLE intake.spent_challenges ENABLE ROW LEVEL SECURITY;
CREATE POLICY district_scope ON intake.spent_challenges TO minqing_runtime
    USING (minqing_meta.in_scope(district_id))
    WITH CHECK (minqing_meta.in_scope(district_id));
