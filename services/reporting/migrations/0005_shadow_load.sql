-- A rebuild loads its shadow slots with COPY (issue 9: the rebuild's speed).
--
-- PostgreSQL refuses COPY FROM into a table with row-level security: since 0003 a
-- rebuild copied into a temporary table and moved the rows into the slot with
-- INSERT … SELECT. Measured on a year of a large district, the policy check itself
-- costs next to nothing; the second copy does (about an eighth of loading the steps,
-- and the cases' temporary table, larger than temp_buffers, spilt to disk).
--
-- reporting.shadow_load(schema, partition, loading) switches one slot (a partition of
-- a projection table) between two states, as its owner (SECURITY DEFINER: the runtime
-- role owns nothing and does no DDL):
--
--   loading = true   row-level security off on that partition, and SELECT, UPDATE and
--                    DELETE on it revoked from minqing_runtime: the services can no longer
--                    read the partition by its name at all (a query naming it is refused,
--                    not answered with every district's rows); INSERT, TRUNCATE and
--                    MAINTAIN stay, so the rebuild COPYs into it and analyses it. Through
--                    the partitioned table, which is what every reader and the consumer
--                    name, the partitioned table's own policy holds as always (PostgreSQL
--                    checks the parent's policies and privileges there, not the
--                    partition's).
--   loading = false  row-level security on again and the privileges back: the state of
--                    0003 and 0001, which tests/security's catalogue check requires.
--
-- The rebuild (services/reporting/shadow.py) opens only the shadow slots, closes them
-- when the bulk load ends (also when it fails), and only then catches up, compares and
-- swaps: a slot is never made live while loading. A rebuild killed in between leaves the
-- slot closed to direct reads (and the catalogue check failing) until the next rebuild.
CREATE FUNCTION reporting.shadow_load(target_schema text, slot_table text, loading boolean)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF target_schema NOT IN ('reporting', 'reporting_asof') THEN
        RAISE EXCEPTION 'not a schema of projections: %', target_schema;
    END IF;
    -- Only a slot of a projection table holding districts' rows: a partition, in that
    -- schema, with a district_id.
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
    IF loading THEN
        EXECUTE format('REVOKE SELECT, UPDATE, DELETE ON %I.%I FROM minqing_runtime',
                       target_schema, slot_table);
        EXECUTE format('ALTER TABLE %I.%I DISABLE ROW LEVEL SECURITY', target_schema, slot_table);
    ELSE
        EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', target_schema, slot_table);
        EXECUTE format('GRANT SELECT, UPDATE, DELETE ON %I.%I TO minqing_runtime',
                       target_schema, slot_table);
    END IF;
END
$$;

REVOKE ALL ON FUNCTION reporting.shadow_load(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reporting.shadow_load(text, text, boolean) TO minqing_runtime;
