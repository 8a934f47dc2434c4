-- The liaison work beyond a single case (docs/liaison.md): departments and their
-- whistles, the people of the directory beyond stations and streets, citizen
-- spokespersons, representatives' activities, reception days that are cancelled or
-- moved and planned from published rules, callbacks, and who took an opinion down.
-- Every table is a projection of events (district-*, station-*, representative-*,
-- case-*), written in the transaction of its events and rebuilt by `minqing routing
-- rebuild`.

-- Functional departments (职能部门) the stations summon (DepartmentRegistered/Retired).
CREATE TABLE routing.departments (
    district_id     text NOT NULL,
    department_code text NOT NULL,
    name_zh         text NOT NULL,
    duty_staff      text[] NOT NULL DEFAULT '{}',
    report_in       text NOT NULL,
    respond_in      text NOT NULL,
    categories      text[] NOT NULL DEFAULT '{}',
    active          boolean NOT NULL DEFAULT true,
    registered_at   timestamptz NOT NULL,
    retired_at      timestamptz,
    retired_reason  text,
    PRIMARY KEY (district_id, department_code)
);

-- Community commissioners (社区专员), district office staff, department staff
-- (StaffMemberRegistered/Retired).
CREATE TABLE routing.staff_members (
    district_id     text NOT NULL,
    staff_id        text NOT NULL,
    role            text NOT NULL,
    name_zh         text,
    street_code     text,
    communities     text[] NOT NULL DEFAULT '{}',
    department_code text,
    active          boolean NOT NULL DEFAULT true,
    registered_at   timestamptz NOT NULL,
    retired_at      timestamptz,
    retired_reason  text,
    PRIMARY KEY (district_id, staff_id)
);

-- Citizen spokespersons (群众代言员), each on one station's roster at a time.
CREATE TABLE routing.spokespersons (
    district_id     text NOT NULL,
    spokesperson_id text NOT NULL,
    station_code    text NOT NULL,
    name_zh         text NOT NULL,
    community       text,
    appointed_on    date,
    active          boolean NOT NULL DEFAULT true,
    registered_at   timestamptz NOT NULL,
    retired_at      timestamptz,
    retired_reason  text,
    PRIMARY KEY (district_id, spokesperson_id)
);

-- Representatives' activities at stations (ActivityRecorded; recorded again: replaced).
CREATE TABLE routing.activities (
    district_id     text NOT NULL,
    activity_id     text NOT NULL,
    station_code    text NOT NULL,
    kind            text NOT NULL,
    title           text NOT NULL,
    held_on         date NOT NULL,
    starts_at       time,
    ends_at         time,
    representatives text[] NOT NULL DEFAULT '{}',
    spokespersons   text[] NOT NULL DEFAULT '{}',
    residents_met   integer NOT NULL DEFAULT 0,
    opinions_taken  integer NOT NULL DEFAULT 0,
    reception_day   date,
    location        text,
    summary         text,
    recorded_at     timestamptz NOT NULL,
    recorded_by     text NOT NULL,
    PRIMARY KEY (district_id, activity_id)
);
CREATE INDEX activities_by_station ON routing.activities (district_id, station_code, held_on);

-- A representative's recurring reception rules (ReceptionRulesPublished): what the
-- planner keeps planning days from.
ALTER TABLE routing.representatives ADD COLUMN reception_rules jsonb NOT NULL DEFAULT '[]';

-- Reception days keep their history: scheduled, cancelled, or moved (to moved_to).
ALTER TABLE routing.reception_days
    ADD COLUMN status     text NOT NULL DEFAULT 'scheduled',
    ADD COLUMN moved_from date,
    ADD COLUMN moved_to   date,
    ADD COLUMN reason     text;

-- Whistles (吹哨) and what each summoned body did: one row per CaseEscalated, the
-- department's steps and the station's rating (一哨一评价). Written from the case's state
-- with the case's row, never behind it (version).
CREATE TABLE routing.whistles (
    case_id         text NOT NULL,
    seq             integer NOT NULL,
    district_id     text NOT NULL,
    to_level        text NOT NULL,
    to_name         text NOT NULL,
    department_code text,
    whistled_at     timestamptz NOT NULL,
    whistled_by     text NOT NULL,
    report_due      timestamptz,
    due             timestamptz,
    reported_at     timestamptz,
    reported_by     text,
    responded_at    timestamptz,
    responded_by    text,
    action          text,
    rating          smallint,
    rated_at        timestamptz,
    rated_by        text,
    version         integer NOT NULL,
    PRIMARY KEY (case_id, seq)
);
CREATE INDEX whistles_by_department ON routing.whistles (district_id, department_code, whistled_at DESC)
    WHERE department_code IS NOT NULL;

-- Who took the opinion down (a spokesperson's intake is counted by it), and whether the
-- rating shown is the resident's own or a callback taken by staff (回访), and when.
ALTER TABLE routing.cases
    ADD COLUMN collected_by      text,
    ADD COLUMN collected_by_role text,
    ADD COLUMN rated_at          timestamptz,
    ADD COLUMN rating_source     text;
CREATE INDEX cases_collected_by ON routing.cases (district_id, collected_by)
    WHERE collected_by IS NOT NULL;
-- A suggestion's answer is supervised too (its deadline in the overdue scan).
CREATE INDEX cases_suggestion_due ON routing.cases (next_due)
    WHERE status = 'converted' AND next_due IS NOT NULL;

-- Everyone the directory knows as a person, by role, in one place: what a staff token's
-- subject can be checked against (a known, active person of that role in the district).
CREATE VIEW routing.people AS
    SELECT district_id, representative_id AS person_id, 'representative' AS role,
           name_zh, active
      FROM routing.representatives
    UNION ALL
    SELECT DISTINCT ON (district_id, officer) district_id, officer, 'liaison', NULL::text,
           bool_or(active) OVER (PARTITION BY district_id, officer)
      FROM routing.stations, unnest(liaison_officers) AS officer
    UNION ALL
    SELECT DISTINCT district_id, supervisor, 'street_supervisor', NULL::text, true
      FROM routing.streets, unnest(supervisors) AS supervisor
    UNION ALL
    SELECT district_id, staff_id, role, name_zh, active
      FROM routing.staff_members
    UNION ALL
    SELECT DISTINCT ON (district_id, duty) district_id, duty, 'department', NULL::text,
           bool_or(active) OVER (PARTITION BY district_id, duty)
      FROM routing.departments, unnest(duty_staff) AS duty
    UNION ALL
    SELECT district_id, spokesperson_id, 'spokesperson', name_zh, active
      FROM routing.spokespersons;

GRANT SELECT, INSERT, UPDATE, DELETE ON routing.departments, routing.staff_members,
    routing.spokespersons, routing.activities, routing.whistles TO minqing_runtime;
GRANT SELECT ON routing.people TO minqing_runtime;
