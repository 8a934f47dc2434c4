-- Audit: who may append to which streams (authorship, enforced here), and the indexes
-- the audit commands read by (seals, replays and exports go through one district in the
-- store's order; the audit of a case looks up its opinion's case and its notifications).

-- One role per writer. Each is a member of minqing_runtime and inherits its privileges
-- (SELECT and INSERT on the events, the grants of each service's own schema) but may not
-- SET ROLE to it (PostgreSQL 16 and later), so it cannot borrow its right to append
-- anywhere. On a server prepared by deploy/postgres/init.sql they exist already, as
-- login roles with passwords; locally and in tests the superuser creates them here.
DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['minqing_intake', 'minqing_routing', 'minqing_notification',
                                  'minqing_reporting', 'minqing_audit'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database
            END;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_auth_members m
                        WHERE m.roleid = 'minqing_runtime'::regrole
                          AND m.member = v_role::regrole) THEN
            EXECUTE format('GRANT minqing_runtime TO %I WITH INHERIT TRUE, SET FALSE', v_role);
        END IF;
    END LOOP;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'the roles of the Minqing services are missing or not members of minqing_runtime'
        USING HINT = 'run deploy/postgres/init.sql as a superuser first (see deploy/README.md)';
END $$;

-- Which role may append to which stream category. The same map as
-- contracts.topics.SERVICE_BY_CATEGORY (a test keeps them equal), role minqing_<service>.
-- '*' is any category: only for minqing_runtime, the shared base role that local tools
-- and the test suite run as; no deployed login may become it (see above).
CREATE TABLE eventstore.authors (
    role_name name NOT NULL,
    category  text NOT NULL,
    PRIMARY KEY (role_name, category)
);

INSERT INTO eventstore.authors (role_name, category) VALUES
    ('minqing_intake', 'opinion'),
    ('minqing_routing', 'case'),
    ('minqing_routing', 'district'),
    ('minqing_routing', 'station'),
    ('minqing_routing', 'representative'),
    ('minqing_notification', 'notification'),
    ('minqing_audit', 'audit'),
    ('minqing_runtime', '*');

GRANT SELECT ON eventstore.authors TO minqing_runtime;

-- The row trigger of 0001, with authorship checked first. In the trigger, not in
-- eventstore.append, so that a plain INSERT cannot go around it; only the table's owner
-- or a superuser can disable a trigger. A superuser may append anywhere: refusing one
-- would protect nothing, since it can turn the check off or become any role.
CREATE OR REPLACE FUNCTION eventstore.before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_prev bytea;
BEGIN
    NEW.transaction_id := pg_current_xact_id();
    NEW.recorded_at := clock_timestamp();
    NEW.category := split_part(NEW.stream_id, '-', 1);
    IF NOT current_setting('is_superuser')::boolean AND NOT EXISTS (
        SELECT 1 FROM eventstore.authors a
         WHERE a.role_name = current_user AND a.category IN (NEW.category, '*')
    ) THEN
        RAISE EXCEPTION 'role % may not append to % streams', current_user, NEW.category
            USING ERRCODE = 'MQ007',
                  HINT = 'each service appends only to the stream categories it owns (eventstore.authors)';
    END IF;
    IF NEW.stream_version = 1 THEN
        v_prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    ELSE
        SELECT hash INTO v_prev FROM eventstore.events
         WHERE stream_id = NEW.stream_id AND stream_version = NEW.stream_version - 1;
        IF v_prev IS NULL THEN
            RAISE EXCEPTION 'stream % has no version % before %',
                NEW.stream_id, NEW.stream_version - 1, NEW.stream_version
                USING ERRCODE = 'MQ004';
        END IF;
    END IF;
    NEW.prev_hash := v_prev;
    NEW.hash := sha256(v_prev || eventstore.canonical_bytes(NEW));
    RETURN NEW;
END $$;

-- Seals, replays and exports read one district in (transaction_id, global_position) order.
CREATE INDEX events_district_order_idx
    ON eventstore.events (district_id, transaction_id, global_position);

-- The audit of a case: from an opinion to its case, and the notifications about either.
CREATE INDEX events_case_of_opinion_idx
    ON eventstore.events ((data ->> 'opinion_id')) WHERE event_type = 'CaseOpened';
CREATE INDEX events_notification_case_idx
    ON eventstore.events ((data ->> 'case_id')) WHERE category = 'notification';
CREATE INDEX events_notification_opinion_idx
    ON eventstore.events ((data ->> 'opinion_id')) WHERE category = 'notification';
