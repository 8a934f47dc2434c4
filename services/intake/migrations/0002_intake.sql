-- Intake's own state: what it learned from the directory, the opinions it accepted
-- (with their tracking codes), idempotency keys, case progress for tracking and Open311,
-- and the feedback given.

CREATE SCHEMA IF NOT EXISTS intake;

-- The directory as intake sees it (from minqing.directory.v1).
CREATE TABLE intake.districts (
    district_id text        PRIMARY KEY,
    name_zh     text        NOT NULL,
    name_en     text,
    timezone    text        NOT NULL DEFAULT 'Asia/Shanghai',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE intake.stations (
    district_id    text             NOT NULL,
    station_code   text             NOT NULL,
    name_zh        text             NOT NULL,
    kind           text             NOT NULL,
    street_code    text,
    street_name_zh text,
    communities    text[]           NOT NULL DEFAULT '{}',
    address        text,
    lat            double precision,
    long           double precision,
    star_rating    integer,
    retired_at     timestamptz,
    updated_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, station_code)
);
-- The QR path names a station by its code alone.
CREATE INDEX stations_code_idx ON intake.stations (station_code);

CREATE TABLE intake.streets (
    district_id text        NOT NULL,
    street_code text        NOT NULL,
    name_zh     text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, street_code)
);

CREATE TABLE intake.communities (
    district_id text NOT NULL,
    community   text NOT NULL,
    street_code text NOT NULL,
    PRIMARY KEY (district_id, community)
);

CREATE TABLE intake.representatives (
    district_id       text        NOT NULL,
    representative_id text        NOT NULL,
    name_zh           text        NOT NULL,
    level             text,
    retired_at        timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, representative_id)
);

-- The district's taxonomy as routing last published it (TaxonomyPublished): the
-- categories of the QR form and of Open311's services.
CREATE TABLE intake.taxonomies (
    district_id  text        PRIMARY KEY,
    version      integer     NOT NULL,
    categories   jsonb       NOT NULL,
    published_at timestamptz NOT NULL
);

CREATE TABLE intake.station_representatives (
    district_id       text NOT NULL,
    station_code      text NOT NULL,
    representative_id text NOT NULL,
    PRIMARY KEY (district_id, station_code, representative_id)
);

-- Every accepted opinion, written in the transaction that appends its OpinionSubmitted.
-- The tracking code is a credential held here only: it is never in an event.
CREATE TABLE intake.opinions (
    opinion_id    text             PRIMARY KEY,
    district_id   text             NOT NULL,
    tracking_code text             NOT NULL UNIQUE,
    channel       text             NOT NULL,
    station_code  text,
    community     text,
    address       text,
    lat           double precision,
    long          double precision,
    category_hint text,
    text          text             NOT NULL,
    attachments   text[]           NOT NULL DEFAULT '{}',
    external_ref  text,
    subject_id    text,
    submitted_at  timestamptz      NOT NULL,
    recorded_at   timestamptz      NOT NULL DEFAULT now(),
    -- Set when the resident withdrew the opinion (OpinionWithdrawn), with their reason.
    withdrawn_at  timestamptz,
    withdraw_reason text
);
CREATE INDEX opinions_district_time_idx ON intake.opinions (district_id, submitted_at DESC);

-- Idempotency-Key → the answer given, stored with the event in one transaction.
CREATE TABLE intake.idempotency_keys (
    scope        text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    status       integer,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Case progress, from minqing.cases.v1: one row per case, one step per case event.
CREATE TABLE intake.cases (
    case_id        text        PRIMARY KEY,
    opinion_id     text        NOT NULL,
    district_id    text        NOT NULL,
    stage          text        NOT NULL,
    open311_status text        NOT NULL,
    category_code  text,
    progress       jsonb       NOT NULL,
    opened_at      timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX cases_opinion_idx ON intake.cases (opinion_id, opened_at DESC);

CREATE TABLE intake.case_steps (
    event_id       uuid        PRIMARY KEY,
    case_id        text        NOT NULL,
    opinion_id     text        NOT NULL,
    district_id    text        NOT NULL,
    stream_version bigint      NOT NULL,
    occurred_at    timestamptz NOT NULL,
    step           jsonb       NOT NULL
);
CREATE INDEX case_steps_opinion_idx ON intake.case_steps (opinion_id, occurred_at);
CREATE INDEX case_steps_district_time_idx ON intake.case_steps (district_id, occurred_at);

-- One feedback per resolution of a case (一哨一评价).
CREATE TABLE intake.feedback (
    case_id        text        NOT NULL,
    resolution_seq integer     NOT NULL,
    opinion_id     text        NOT NULL,
    event_id       uuid        NOT NULL UNIQUE,
    satisfaction   integer     NOT NULL CHECK (satisfaction BETWEEN 1 AND 5),
    resolved       boolean     NOT NULL,
    comment        text,
    submitted_at   timestamptz NOT NULL,
    PRIMARY KEY (case_id, resolution_seq)
);
CREATE INDEX feedback_opinion_idx ON intake.feedback (opinion_id);

GRANT USAGE ON SCHEMA intake TO minqing_runtime;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA intake TO minqing_runtime;
-- A representative who leaves a station is removed from its list.
GRANT DELETE ON intake.station_representatives TO minqing_runtime;
