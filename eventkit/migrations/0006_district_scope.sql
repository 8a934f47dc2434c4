-- Row-level security between districts: the district a transaction works for.
--
-- Every table that holds a district's data enables row-level security with a policy
-- that lets the services' roles see and write only the rows of the district their
-- transaction or session declared (eventkit.db.scope / district_connection):
--
--   ALTER TABLE s.t ENABLE ROW LEVEL SECURITY;
--   CREATE POLICY district_scope ON s.t TO minqing_runtime
--       USING (minqing_meta.in_scope(district_id))
--       WITH CHECK (minqing_meta.in_scope(district_id));
--
-- A connection that declared nothing sees nothing: a query that forgot its district
-- returns no rows instead of another district's. Work that is about every district by
-- nature (the relay, audits, rebuilds, the overdue sweep, a group commit of several
-- districts' appends) declares '*' explicitly (eventkit.db.ALL_DISTRICTS), so that it
-- can be found and reviewed. The owner of the tables (migrations, minqing_owner) is
-- not subject to the policies.
--
-- The setting is read with missing_ok: unset is NULL, and NULL is in no district.
-- Inlined by the planner (LANGUAGE sql, STABLE): "district_id = <setting>" can use the
-- tables' district indexes.
CREATE OR REPLACE FUNCTION minqing_meta.in_scope(district text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT district = current_setting('minqing.district', true)
        OR current_setting('minqing.district', true) = '*'
$$;

GRANT USAGE ON SCHEMA minqing_meta TO minqing_runtime;
GRANT EXECUTE ON FUNCTION minqing_meta.in_scope(text) TO minqing_runtime;
