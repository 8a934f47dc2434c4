-- A shadow slot's secondary indexes are built after its bulk load, not row by row during
-- it (issue 9: the rebuild's speed).
--
-- Measured on a year of a large district (790,000 steps, 133,000 cases, 90,000 ratings):
-- keeping the steps' two secondary indexes and those of the cases and the ratings up to
-- date while the slot is COPYed into cost the server 6.6 s of its 13 s of CPU in a
-- rebuild; building them afterwards costs 2 s on two connections at once.
--
-- An index on the partitioned table cannot be dropped on one partition alone, so these
-- indexes move from the partitioned tables to each slot (a partition): a reader names
-- the partitioned table with `slot = $1`, the planner prunes to that slot and uses its
-- index as before. The primary keys stay on the partitioned tables (the consumer's and
-- the rebuild's upserts infer their conflicts from them).
--
-- reporting.slot_indexes lists them; reporting.shadow_load (0005) now drops them when a
-- slot is opened for loading and builds any missing when it is closed, and
-- reporting.shadow_index builds one of them, as the tables' owner (SECURITY DEFINER), so
-- the rebuild builds them on several connections at once before it closes the slots. A
-- rebuild that dies in between leaves the shadow without them until the next rebuild
-- closes it; a slot is never made live before it is closed.
CREATE TABLE reporting.slot_indexes (
    table_name text NOT NULL,
    suffix     text NOT NULL,
    columns    text NOT NULL,
    PRIMARY KEY (table_name, suffix)
);
INSERT INTO reporting.slot_indexes (table_name, suffix, columns) VALUES
    ('case_steps', 'representative', 'district_id, representative_id, recorded_at'),
    ('case_steps', 'station', 'district_id, station_code, recorded_at'),
    ('cases', 'opened', 'district_id, opened_at'),
    ('ratings', 'recorded', 'district_id, recorded_at');
GRANT SELECT ON reporting.slot_indexes TO minqing_runtime;

DO $$
DECLARE
    s text;
    r record;
    n int;
BEGIN
    FOREACH s IN ARRAY ARRAY['reporting', 'reporting_asof'] LOOP
        -- The partitioned tables' secondary indexes (0001), with their slots' parts.
        FOR r IN
            SELECT i.indexrelid::regclass::text AS name
              FROM pg_index i
              JOIN pg_class t ON t.oid = i.indrelid
              JOIN pg_namespace ns ON ns.oid = t.relnamespace
             WHERE ns.nspname = s AND t.relname IN ('case_steps', 'cases', 'ratings')
               AND NOT i.indisprimary
        LOOP
            EXECUTE 'DROP INDEX ' || r.name;
        END LOOP;
        FOR r IN SELECT x.table_name, x.suffix, x.columns FROM reporting.slot_indexes x LOOP
            FOREACH n IN ARRAY ARRAY[0, 1] LOOP
                EXECUTE format('CREATE INDEX %I ON %I.%I (%s)',
                               r.table_name || '_s' || n || '_' || r.suffix, s,
                               r.table_name || '_s' || n, r.columns);
            END LOOP;
        END LOOP;
    END LOOP;
END $$;

-- The checks of 0005, shared: a slot of a projection table, in a schema of projections.
CREATE FUNCTION reporting.checked_slot(target_schema text, slot_table text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF target_schema NOT IN ('reporting', 'reporting_asof') THEN
        RAISE EXCEPTION 'not a schema of projections: %', target_schema;
    END IF;
    IF NOT EXISTS (
        SELECT 1
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_inherits i ON i.inhrelid = c.oid
         WHERE n.nspname = target_schema AND c.relname = slot_table AND c.relispartition
           AND EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attname = 'district_id'
                          AND NOT a.attisdropped)
    ) THEN
        RAISE EXCEPTION 'not a slot of a projection table: %.%', target_schema, slot_table;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION reporting.checked_slot(text, text) FROM PUBLIC;

-- Build one listed index of a slot, unless it is there (as the owner).
CREATE FUNCTION reporting.shadow_index(target_schema text, slot_table text, index_suffix text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text;
BEGIN
    PERFORM reporting.checked_slot(target_schema, slot_table);
    SELECT x.columns INTO cols
      FROM reporting.slot_indexes x
     WHERE (slot_table = x.table_name || '_s0' OR slot_table = x.table_name || '_s1')
       AND x.suffix = index_suffix;
    IF cols IS NULL THEN
        RAISE EXCEPTION 'no index % listed for %', index_suffix, slot_table;
    END IF;
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I (%s)',
                   slot_table || '_' || index_suffix, target_schema, slot_table, cols);
END
$$;
REVOKE ALL ON FUNCTION reporting.shadow_index(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reporting.shadow_index(text, text, text) TO minqing_runtime;

-- 0005's function, which now also drops the listed indexes of a slot opened for loading
-- and builds those missing when it is closed.
CREATE OR REPLACE FUNCTION reporting.shadow_load(target_schema text, slot_table text, loading boolean)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    PERFORM reporting.checked_slot(target_schema, slot_table);
    IF loading THEN
        EXECUTE format('REVOKE SELECT, UPDATE, DELETE ON %I.%I FROM minqing_runtime',
                       target_schema, slot_table);
        EXECUTE format('ALTER TABLE %I.%I DISABLE ROW LEVEL SECURITY', target_schema, slot_table);
        FOR r IN SELECT x.suffix FROM reporting.slot_indexes x
                  WHERE slot_table IN (x.table_name || '_s0', x.table_name || '_s1') LOOP
            EXECUTE format('DROP INDEX IF EXISTS %I.%I', target_schema,
                           slot_table || '_' || r.suffix);
        END LOOP;
    ELSE
        FOR r IN SELECT x.suffix FROM reporting.slot_indexes x
                  WHERE slot_table IN (x.table_name || '_s0', x.table_name || '_s1') LOOP
            PERFORM reporting.shadow_index(target_schema, slot_table, r.suffix);
        END LOOP;
        EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', target_schema, slot_table);
        EXECUTE format('GRANT SELECT, UPDATE, DELETE ON %I.%I TO minqing_runtime',
                       target_schema, slot_table);
    END IF;
END
$$;
