-- Residents' rights (docs/privacy.md): the trace of every request made for a resident
-- (find, export, forget) and of every retention run, and each district's retention
-- period. Tables of the shared library's schema `privacy`, created here because intake
-- created the schema (0001). No personal data: subjects are pseudonymous ids, the phone
-- number a request named is never stored.

-- Who asked what for whom, when and why; what was done (counts per service).
-- Append-only for the services: no UPDATE, no DELETE.
CREATE TABLE privacy.rights_requests (
    request_id   uuid        PRIMARY KEY,
    district_id  text        NOT NULL,
    kind         text        NOT NULL
                 CHECK (kind IN ('find', 'export', 'forget', 'retention')),
    requested_by text        NOT NULL,
    reason       text,
    subject_ids  text[]      NOT NULL DEFAULT '{}',
    outcome      jsonb       NOT NULL DEFAULT '{}',
    requested_at timestamptz NOT NULL
);
CREATE INDEX rights_requests_district_time
    ON privacy.rights_requests (district_id, requested_at DESC);

-- A district's retention period for the texts of closed cases. No row: the default
-- (eventkit.privacy_rights.DEFAULT_RETENTION_DAYS, three years).
CREATE TABLE privacy.retention (
    district_id    text        PRIMARY KEY,
    retention_days integer     NOT NULL CHECK (retention_days BETWEEN 30 AND 36500),
    updated_at     timestamptz NOT NULL,
    updated_by     text        NOT NULL
);

-- Row-level security as everywhere (eventkit/migrations/0006_district_scope.sql).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['rights_requests', 'retention'] LOOP
        EXECUTE format('ALTER TABLE privacy.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($q$
            CREATE POLICY district_scope ON privacy.%I TO minqing_runtime
                USING (minqing_meta.in_scope(district_id))
                WITH CHECK (minqing_meta.in_scope(district_id))$q$, t);
    END LOOP;
END $$;

GRANT SELECT, INSERT ON privacy.rights_requests TO minqing_runtime;
GRANT SELECT, INSERT, UPDATE ON privacy.retention TO minqing_runtime;
