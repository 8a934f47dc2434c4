-- Residents' personal-data keys (eventkit.privacy): the shared library's table, created
-- by intake, which is the service that first seals personal data. Deleting a row is
-- crypto-shredding: every ciphertext sealed with that key becomes unreadable.

CREATE SCHEMA IF NOT EXISTS privacy;

CREATE TABLE privacy.subject_keys (
    subject_id  text        PRIMARY KEY,
    district_id text        NOT NULL,
    key         bytea       NOT NULL CHECK (length(key) = 32),
    -- Keyed hash of the resident's phone number in this district (blind index): the
    -- same resident gets the same subject. NULL for a subject known by no number.
    lookup_hash bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subject_keys_lookup_unique UNIQUE (district_id, lookup_hash)
);

-- Who asked to forget whom, and when: the trace of the erasure (no personal data).
CREATE TABLE privacy.forgotten_subjects (
    subject_id   text        PRIMARY KEY,
    district_id  text        NOT NULL,
    forgotten_at timestamptz NOT NULL DEFAULT now(),
    requested_by text        NOT NULL,
    reason       text
);

-- The key of the blind index: random, generated once per database.
CREATE TABLE privacy.lookup_key (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    key       bytea   NOT NULL CHECK (length(key) = 32)
);
INSERT INTO privacy.lookup_key (key)
SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');

GRANT USAGE ON SCHEMA privacy TO minqing_runtime;
-- DELETE on the key table only: forgetting is the one deletion the services may do.
GRANT SELECT, INSERT, DELETE ON privacy.subject_keys TO minqing_runtime;
GRANT SELECT, INSERT ON privacy.forgotten_subjects TO minqing_runtime;
GRANT SELECT ON privacy.lookup_key TO minqing_runtime;
