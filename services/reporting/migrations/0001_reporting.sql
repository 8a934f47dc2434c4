-- The reporting service's read models: facts folded from the event store, read by the
-- dashboards, the API and the monthly report. Nothing here is a source of truth except
-- reporting.assessment_criteria (the districts' settings for the indicated star rating):
-- every other table is rebuilt from the store by `minqing reporting rebuild`.
--
-- Shadow rebuilds without DDL: every projection table is partitioned by `slot` (0 or 1).
-- `<schema>.projections` names the live slot of each projection; the consumer writes to
-- the live slot, a rebuild fills the other one (TRUNCATE, COPY), catches up and compares,
-- then swaps by updating one row, in one transaction. The runtime role needs no
-- ownership and readers never wait for an exclusive lock.
--
-- Schema `reporting_asof` has the same tables: `minqing reporting rebuild --at T` builds
-- the projections as they stood at T there, for audits, leaving the live ones alone.

CREATE SCHEMA IF NOT EXISTS reporting;
CREATE SCHEMA IF NOT EXISTS reporting_asof;

DO $$
DECLARE
    s text;
    t text;
BEGIN
    FOREACH s IN ARRAY ARRAY['reporting', 'reporting_asof'] LOOP
        -- Which slot of each projection is live; as_of is set for an audit build.
        EXECUTE format($q$
            CREATE TABLE %I.projections (
                name        text PRIMARY KEY,
                slot        smallint NOT NULL CHECK (slot IN (0, 1)),
                swapped_at  timestamptz,
                as_of       timestamptz,
                events      bigint
            )$q$, s);
        EXECUTE format($q$
            INSERT INTO %I.projections (name, slot)
            VALUES ('directory', 0), ('cases', 0), ('ratings', 0)$q$, s);

        -- ---------------------------------------------------------------- directory
        EXECUTE format($q$
            CREATE TABLE %I.districts (
                slot        smallint NOT NULL,
                district_id text NOT NULL,
                name_zh     text NOT NULL,
                name_en     text,
                timezone    text NOT NULL,
                PRIMARY KEY (slot, district_id)
            ) PARTITION BY LIST (slot)$q$, s);
        EXECUTE format($q$
            CREATE TABLE %I.streets (
                slot        smallint NOT NULL,
                district_id text NOT NULL,
                street_code text NOT NULL,
                name_zh     text NOT NULL,
                supervisors text[] NOT NULL,
                PRIMARY KEY (slot, district_id, street_code)
            ) PARTITION BY LIST (slot)$q$, s);
        EXECUTE format($q$
            CREATE TABLE %I.communities (
                slot        smallint NOT NULL,
                district_id text NOT NULL,
                community   text NOT NULL,
                street_code text NOT NULL,
                PRIMARY KEY (slot, district_id, community)
            ) PARTITION BY LIST (slot)$q$, s);
        EXECUTE format($q$
            CREATE TABLE %I.stations (
                slot             smallint NOT NULL,
                district_id      text NOT NULL,
                station_code     text NOT NULL,
                name_zh          text NOT NULL,
                kind             text NOT NULL,
                street_code      text NOT NULL,
                star_rating      smallint,
                liaison_officers text[] NOT NULL,
                active           boolean NOT NULL,
                PRIMARY KEY (slot, district_id, station_code)
            ) PARTITION BY LIST (slot)$q$, s);
        EXECUTE format($q$
            CREATE TABLE %I.representatives (
                slot              smallint NOT NULL,
                district_id       text NOT NULL,
                representative_id text NOT NULL,
                name_zh           text NOT NULL,
                level             text NOT NULL,
                active            boolean NOT NULL,
                PRIMARY KEY (slot, district_id, representative_id)
            ) PARTITION BY LIST (slot)$q$, s);
        -- The latest stay of each representative at each station (编组进站).
        EXECUTE format($q$
            CREATE TABLE %I.memberships (
                slot              smallint NOT NULL,
                district_id       text NOT NULL,
                representative_id text NOT NULL,
                station_code      text NOT NULL,
                joined_at         timestamptz NOT NULL,
                left_at           timestamptz,
                PRIMARY KEY (slot, district_id, representative_id, station_code)
            ) PARTITION BY LIST (slot)$q$, s);
        EXECUTE format($q$
            CREATE TABLE %I.categories (
                slot             smallint NOT NULL,
                district_id      text NOT NULL,
                category_code    text NOT NULL,
                name_zh          text NOT NULL,
                name_en          text,
                taxonomy_version integer NOT NULL,
                PRIMARY KEY (slot, district_id, category_code)
            ) PARTITION BY LIST (slot)$q$, s);

        -- ---------------------------------------------------------------- cases
        -- One row per case: its facts as its own stream tells them, every time being
        -- when the store recorded the event (periods are cut on these).
        EXECUTE format($q$
            CREATE TABLE %I.cases (
                slot                      smallint NOT NULL,
                case_id                   text NOT NULL,
                district_id               text NOT NULL,
                opinion_id                text NOT NULL,
                channel                   text,
                community                 text,
                street_code               text,
                category_code             text,
                priority                  text NOT NULL,
                station_code              text,
                representative_id         text,
                queue                     text NOT NULL,
                status                    text NOT NULL,
                withdrawn                 boolean NOT NULL,
                opened_at                 timestamptz NOT NULL,
                first_assigned_at         timestamptz,
                accepted_at               timestamptz,
                first_response_at         timestamptz,
                response_due              timestamptz,
                response_missed           boolean NOT NULL,
                responded_on_time         boolean,
                resolution_due            timestamptz,
                resolution_missed         boolean NOT NULL,
                first_resolved_at         timestamptz,
                resolved_at               timestamptz,
                resolved_on_time          boolean,
                resolution_seq            integer NOT NULL,
                closed_at                 timestamptz,
                reopened_count            integer NOT NULL,
                overdue_count             integer NOT NULL,
                escalated_count           integer NOT NULL,
                transferred_count         integer NOT NULL,
                transferred_from_district text,
                transferred_to_district   text,
                merged_into               text,
                converted_at              timestamptz,
                suggestion_reply_due      timestamptz,
                suggestion_answered_at    timestamptz,
                updated_at                timestamptz NOT NULL,
                version                   integer NOT NULL,
                PRIMARY KEY (slot, case_id)
            ) PARTITION BY LIST (slot)$q$, s);
        EXECUTE format('CREATE INDEX ON %I.cases (slot, district_id, opened_at)', s);

        -- One row per step of a case that a report counts, credited to whoever held the
        -- case at that moment (station, representative). The representative's archive.
        EXECUTE format($q$
            CREATE TABLE %I.case_steps (
                slot              smallint NOT NULL,
                case_id           text NOT NULL,
                version           integer NOT NULL,
                kind              text NOT NULL,
                district_id       text NOT NULL,
                recorded_at       timestamptz NOT NULL,
                station_code      text,
                representative_id text,
                counterpart       text,
                on_time           boolean,
                resolution_seq    integer,
                note              text,
                PRIMARY KEY (slot, case_id, version, kind)
            ) PARTITION BY LIST (slot)$q$, s);
        EXECUTE format(
            'CREATE INDEX ON %I.case_steps (slot, district_id, representative_id, recorded_at)',
            s);
        EXECUTE format(
            'CREATE INDEX ON %I.case_steps (slot, district_id, station_code, recorded_at)', s);

        -- ---------------------------------------------------------------- ratings
        -- Residents' ratings (一哨一评价): one per resolution of a case; never the comment.
        EXECUTE format($q$
            CREATE TABLE %I.ratings (
                slot           smallint NOT NULL,
                case_id        text NOT NULL,
                resolution_seq integer NOT NULL,
                district_id    text NOT NULL,
                satisfaction   smallint NOT NULL,
                resolved       boolean NOT NULL,
                recorded_at    timestamptz NOT NULL,
                PRIMARY KEY (slot, case_id, resolution_seq)
            ) PARTITION BY LIST (slot)$q$, s);
        EXECUTE format('CREATE INDEX ON %I.ratings (slot, district_id, recorded_at)', s);

        FOREACH t IN ARRAY ARRAY['districts', 'streets', 'communities', 'stations',
                                 'representatives', 'memberships', 'categories', 'cases',
                                 'case_steps', 'ratings'] LOOP
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES IN (0)',
                           s, t || '_s0', s, t);
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES IN (1)',
                           s, t || '_s1', s, t);
        END LOOP;
    END LOOP;
END $$;

-- The criteria of the indicated star rating, per district (configuration, not a
-- projection: kept across rebuilds). No row: the defaults of services/reporting/assessment.py.
CREATE TABLE reporting.assessment_criteria (
    district_id text PRIMARY KEY,
    criteria    jsonb NOT NULL,
    updated_at  timestamptz NOT NULL,
    updated_by  text NOT NULL
);

GRANT USAGE ON SCHEMA reporting, reporting_asof TO minqing_runtime;
-- TRUNCATE: a rebuild empties its shadow slot; MAINTAIN: it ANALYZEs what it loaded.
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, MAINTAIN
    ON ALL TABLES IN SCHEMA reporting, reporting_asof TO minqing_runtime;
