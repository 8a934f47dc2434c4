-- The routing service's read models. Every row here is a projection of events in the
-- store (district-*, station-*, representative-*, case-*, and the opinion a case came
-- from), written in the same transaction as the events, and rebuildable from the store
-- (`minqing routing rebuild`). The service runs as minqing_runtime.

CREATE SCHEMA IF NOT EXISTS routing;
GRANT USAGE ON SCHEMA routing TO minqing_runtime;

-- One row per district: its name, time zone, published rules, and a version that every
-- directory change bumps (the service caches a district's directory by it).
CREATE TABLE routing.districts (
    district_id      text PRIMARY KEY,
    name_zh          text NOT NULL,
    name_en          text,
    timezone         text NOT NULL DEFAULT 'Asia/Shanghai',
    config_version   bigint NOT NULL DEFAULT 1,
    taxonomy         jsonb,
    calendar         jsonb,
    policy           jsonb,
    registered_at    timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE TABLE routing.streets (
    district_id       text NOT NULL,
    street_code       text NOT NULL,
    name_zh           text NOT NULL,
    committee_name_zh text,
    supervisors       text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (district_id, street_code)
);

CREATE TABLE routing.communities (
    district_id        text NOT NULL,
    community          text NOT NULL,
    street_code        text NOT NULL,
    electoral_district text,
    lat                double precision,
    long               double precision,
    PRIMARY KEY (district_id, community)
);

CREATE TABLE routing.stations (
    district_id            text NOT NULL,
    station_code           text NOT NULL,
    name_zh                text NOT NULL,
    kind                   text NOT NULL,
    street_code            text NOT NULL,
    street_name_zh         text,
    communities            text[] NOT NULL DEFAULT '{}',
    address                text,
    lat                    double precision,
    long                   double precision,
    star_rating            smallint,
    head_representative_id text,
    liaison_officers       text[] NOT NULL DEFAULT '{}',
    active                 boolean NOT NULL DEFAULT true,
    registered_at          timestamptz NOT NULL,
    retired_at             timestamptz,
    retired_reason         text,
    PRIMARY KEY (district_id, station_code)
);

CREATE TABLE routing.representatives (
    district_id         text NOT NULL,
    representative_id   text NOT NULL,
    name_zh             text NOT NULL,
    level               text NOT NULL,
    electoral_district  text,
    residence_community text,
    expertise           text[] NOT NULL DEFAULT '{}',
    contact_point       text,
    leading_cadre       boolean NOT NULL DEFAULT false,
    active              boolean NOT NULL DEFAULT true,
    registered_at       timestamptz NOT NULL,
    retired_at          timestamptz,
    retired_reason      text,
    open_cases          integer NOT NULL DEFAULT 0,
    PRIMARY KEY (district_id, representative_id)
);

-- Membership history (编组进站): a row per stay; the current ones have no left_at.
CREATE TABLE routing.memberships (
    district_id       text NOT NULL,
    representative_id text NOT NULL,
    station_code      text NOT NULL,
    joined_at         timestamptz NOT NULL,
    left_at           timestamptz,
    PRIMARY KEY (district_id, representative_id, station_code, joined_at)
);
CREATE INDEX memberships_current ON routing.memberships (district_id, station_code)
    WHERE left_at IS NULL;

CREATE TABLE routing.reception_days (
    district_id       text NOT NULL,
    representative_id text NOT NULL,
    station_code      text NOT NULL,
    day               date NOT NULL,
    starts_at         time,
    ends_at           time,
    PRIMARY KEY (district_id, representative_id, station_code, day)
);

-- Cases: the state the domain folds from each case stream, plus the facts of the
-- opinion it came from (its text and place, which routing needs to show and compare).
CREATE TABLE routing.cases (
    case_id               text PRIMARY KEY,
    district_id           text NOT NULL,
    opinion_id            text NOT NULL,
    channel               text,
    text                  text NOT NULL,
    text_norm             text NOT NULL,
    simhash               bigint NOT NULL,
    band0                 integer NOT NULL,
    band1                 integer NOT NULL,
    band2                 integer NOT NULL,
    band3                 integer NOT NULL,
    band4                 integer NOT NULL,
    band5                 integer NOT NULL,
    band6                 integer NOT NULL,
    band7                 integer NOT NULL,
    community             text,
    address               text,
    lat                   double precision,
    long                  double precision,
    status                text NOT NULL,
    is_open               boolean NOT NULL,
    category_code         text,
    matched_keywords      text[] NOT NULL DEFAULT '{}',
    priority              text NOT NULL,
    station_code          text,
    representative_id     text,
    queue                 text NOT NULL,
    response_due          timestamptz,
    resolution_due        timestamptz,
    next_due              timestamptz,
    deadlines_provisional boolean NOT NULL DEFAULT false,
    overdue               boolean NOT NULL DEFAULT false,
    overdue_count         integer NOT NULL DEFAULT 0,
    resolution_seq        integer NOT NULL DEFAULT 0,
    satisfaction          smallint,
    feedback_resolved     boolean,
    opened_at             timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    closed_at             timestamptz,
    version               integer NOT NULL
);
CREATE INDEX cases_by_opinion ON routing.cases (opinion_id);
CREATE INDEX cases_by_status ON routing.cases (district_id, status, opened_at DESC);
CREATE INDEX cases_queue ON routing.cases (district_id, station_code, queue) WHERE is_open;
CREATE INDEX cases_by_representative ON routing.cases (district_id, representative_id)
    WHERE is_open;
CREATE INDEX cases_due ON routing.cases (next_due) WHERE is_open AND next_due IS NOT NULL;
-- Duplicate detection (services/routing/duplicates.py): each way of being related has
-- an index, so the candidates of a new case are found without scanning the open cases.
CREATE INDEX cases_same_community ON routing.cases
    (district_id, category_code, community, opened_at DESC) WHERE is_open;
CREATE INDEX cases_same_place ON routing.cases (district_id, category_code, lat)
    WHERE is_open AND lat IS NOT NULL;
CREATE INDEX cases_band0 ON routing.cases (district_id, band0, opened_at DESC) WHERE is_open;
CREATE INDEX cases_band1 ON routing.cases (district_id, band1, opened_at DESC) WHERE is_open;
CREATE INDEX cases_band2 ON routing.cases (district_id, band2, opened_at DESC) WHERE is_open;
CREATE INDEX cases_band3 ON routing.cases (district_id, band3, opened_at DESC) WHERE is_open;
CREATE INDEX cases_band4 ON routing.cases (district_id, band4, opened_at DESC) WHERE is_open;
CREATE INDEX cases_band5 ON routing.cases (district_id, band5, opened_at DESC) WHERE is_open;
CREATE INDEX cases_band6 ON routing.cases (district_id, band6, opened_at DESC) WHERE is_open;
CREATE INDEX cases_band7 ON routing.cases (district_id, band7, opened_at DESC) WHERE is_open;

-- Links (clusters): one row per CaseLinked, found from either side.
CREATE TABLE routing.case_links (
    case_id         text NOT NULL,
    related_case_id text NOT NULL,
    relation        text NOT NULL,
    reason          text NOT NULL,
    linked_at       timestamptz NOT NULL,
    PRIMARY KEY (case_id, related_case_id, relation)
);
CREATE INDEX case_links_related ON routing.case_links (related_case_id);

-- A representative's open workload, kept by the database itself so that it can never
-- drift from the cases: +1 when an open case is theirs, -1 when it stops being either.
CREATE FUNCTION routing.count_open_cases() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.representative_id IS NOT DISTINCT FROM NEW.representative_id
       AND OLD.is_open = NEW.is_open THEN
        RETURN NEW;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.is_open AND OLD.representative_id IS NOT NULL THEN
        UPDATE routing.representatives SET open_cases = open_cases - 1
         WHERE district_id = OLD.district_id AND representative_id = OLD.representative_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.is_open AND NEW.representative_id IS NOT NULL THEN
        UPDATE routing.representatives SET open_cases = open_cases + 1
         WHERE district_id = NEW.district_id AND representative_id = NEW.representative_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER cases_open_workload
    AFTER INSERT OR UPDATE OF representative_id, is_open OR DELETE ON routing.cases
    FOR EACH ROW EXECUTE FUNCTION routing.count_open_cases();

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA routing TO minqing_runtime;
