-- Residents' rights (docs/privacy.md, "Retention"): whether a matter closed before a
-- retention cut-off, wherever it went.
--
-- A case transferred to another district ends in its own district ("transferred away",
-- closed) and continues there as a case of its own with the same opinion id
-- (services/routing/staff_commands.py, _transfer_out). Under row-level security a
-- retention run scoped to the first district cannot see the continuation: it would take
-- the matter for closed while it is still being worked elsewhere, and measure its age
-- from the transfer instead of from the day the matter really closed.
--
-- This function answers that one question with the owner's rights (not subject to the
-- policies): true when the opinion has a case in the caller's scope, no case of the
-- opinion is open in any district, and every one of them (the last continuation
-- included) closed before p_cutoff. Nothing of another district's rows is returned.
CREATE FUNCTION routing.matter_closed_before(p_opinion_id text, p_cutoff timestamptz)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
               SELECT 1 FROM routing.cases c
                WHERE c.opinion_id = p_opinion_id AND minqing_meta.in_scope(c.district_id))
       AND NOT EXISTS (
               SELECT 1 FROM routing.cases c
                WHERE c.opinion_id = p_opinion_id
                  AND (c.is_open OR c.closed_at IS NULL OR c.closed_at >= p_cutoff))
$$;
REVOKE EXECUTE ON FUNCTION routing.matter_closed_before(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION routing.matter_closed_before(text, timestamptz) TO minqing_runtime;
