-- Staff accounts of the workbench (services/routing/staff_accounts.py, docs/security.md).
--
-- An account belongs to a person the district knows, keyed by (district, person): the
-- directory says which role the person holds and whether they still hold it; the
-- account adds the password and the sessions. The account's history is in the event
-- store (streams staff-<district>.<person>, events of contracts/staff.py); what is
-- here and not there is secret (the password's argon2 hash, the hashes of invitation
-- codes and session tokens) or fleeting (failed attempts, last seen), so a rebuild of
-- the read models leaves these tables alone, like routing.classifier_models.

-- Routing appends the accounts' events: streams of category staff.
INSERT INTO eventstore.authors (role_name, category) VALUES ('minqing_routing', 'staff')
ON CONFLICT DO NOTHING;

CREATE TABLE routing.staff_accounts (
    district_id     text        NOT NULL,
    person_id       text        NOT NULL,
    role            text        NOT NULL,
    -- argon2id, PHC string; NULL until the person sets a password with an invitation.
    password_hash   text,
    status          text        NOT NULL CHECK (status IN ('invited', 'active', 'retired')),
    failed_attempts integer     NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    invited_at      timestamptz NOT NULL,
    password_set_at timestamptz,
    retired_at      timestamptz,
    last_sign_in_at timestamptz,
    version         integer     NOT NULL,
    PRIMARY KEY (district_id, person_id)
);

-- One-time invitation codes, kept only as their SHA-256.
CREATE TABLE routing.staff_invites (
    code_hash   bytea       PRIMARY KEY,
    district_id text        NOT NULL,
    person_id   text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    FOREIGN KEY (district_id, person_id) REFERENCES routing.staff_accounts
);
CREATE INDEX staff_invites_person ON routing.staff_invites (district_id, person_id);

-- Signed-in sessions of the workbench: the cookie carries a random token, this table
-- only its SHA-256, so a copy of the table signs nobody in.
CREATE TABLE routing.staff_sessions (
    token_hash   bytea       PRIMARY KEY,
    district_id  text        NOT NULL,
    person_id    text        NOT NULL,
    role         text        NOT NULL,
    csrf_secret  text        NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    FOREIGN KEY (district_id, person_id) REFERENCES routing.staff_accounts
);
CREATE INDEX staff_sessions_person ON routing.staff_sessions (district_id, person_id)
    WHERE ended_at IS NULL;

GRANT SELECT, INSERT, UPDATE ON routing.staff_accounts, routing.staff_invites,
    routing.staff_sessions TO minqing_runtime;
