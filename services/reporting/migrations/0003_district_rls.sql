-- Row-level security between districts on reporting's tables (issue 14; the mechanism
-- is eventkit/migrations/0006_district_scope.sql), in both schemas (reporting and the
-- audit builds of reporting_asof).
--
-- Every projection table and reporting.assessment_criteria hold one district's data
-- and have its district_id. The projections are partitioned by slot (shadow rebuilds,
-- 0001_reporting.sql): the policy is put on the partitioned table, which is what the
-- code reads and writes, AND on each of its partitions (the slots), because a partition
-- named directly is a table of its own whose policies are its own: the rebuild empties,
-- fills and analyses the shadow partition by name, and without policies there a query
-- naming a partition would see every district. The slots are created here, once, never
-- at run time (a rebuild does no DDL), so no later table escapes: a new projection
-- table or slot is created by a migration, which must enable the same policy (the test
-- tests/security/test_district_isolation_services.py fails on any table of these
-- schemas with a district_id and no policy).
--
-- COPY FROM is refused on a table with row-level security: the rebuild loads the shadow
-- slot through a temporary table instead (services/reporting/shadow.py). Rebuilds,
-- comparisons and swaps are about every district and declare '*'.
--
-- The projections' slot table (<schema>.projections: which slot is live) holds no
-- district's data and stays as it is.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT n.nspname AS s, c.relname AS t
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('reporting', 'reporting_asof')
           AND c.relkind IN ('r', 'p')
           AND EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attname = 'district_id'
                          AND NOT a.attisdropped)
         ORDER BY 1, 2
    LOOP
        EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', r.s, r.t);
        EXECUTE format($q$
            CREATE POLICY district_scope ON %I.%I TO minqing_runtime
                USING (minqing_meta.in_scope(district_id))
                WITH CHECK (minqing_meta.in_scope(district_id))$q$, r.s, r.t);
    END LOOP;
END $$;
