-- Row-level security between districts on routing's tables (issue 14; the mechanism is
-- eventkit/migrations/0006_district_scope.sql). Every table here holds one district's
-- data: the services' roles see and write only the rows of the district their
-- transaction declared (eventkit.db.scope), or every district's when the work is about
-- all of them by nature and says so ('*': the overdue sweep, a rebuild, the look-up of
-- a session or invitation by the hash of its secret).
--
-- routing.case_links had no district: a link is always between two cases of one district
-- (duplicates are looked for within a district, CaseLinked carries the case's district).
-- It gets the column of its own, filled from its case, rather than a policy through
-- routing.cases: a policy with a sub-query would cost a look-up per row read, and the
-- column lets the policy be the same one-line comparison as everywhere else. The
-- projection writes it from the event (services/routing/case_projection.py).
ALTER TABLE routing.case_links ADD COLUMN district_id text;
UPDATE routing.case_links l SET district_id = c.district_id
  FROM routing.cases c WHERE c.case_id = l.case_id;
-- A link whose case is gone (none should be) is kept, under its related case's district.
UPDATE routing.case_links l SET district_id = c.district_id
  FROM routing.cases c WHERE l.district_id IS NULL AND c.case_id = l.related_case_id;
DELETE FROM routing.case_links WHERE district_id IS NULL;
ALTER TABLE routing.case_links ALTER COLUMN district_id SET NOT NULL;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'districts', 'streets', 'communities', 'stations', 'representatives',
        'memberships', 'reception_days', 'cases', 'case_links', 'classifier_models',
        'departments', 'staff_members', 'spokespersons', 'activities', 'whistles',
        'staff_accounts', 'staff_invites', 'staff_sessions'
    ] LOOP
        EXECUTE format('ALTER TABLE routing.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($q$
            CREATE POLICY district_scope ON routing.%I TO minqing_runtime
                USING (minqing_meta.in_scope(district_id))
                WITH CHECK (minqing_meta.in_scope(district_id))$q$, t);
    END LOOP;
END $$;

-- A view runs with its owner's rights unless it says otherwise, and the owner (the
-- migrations) is not subject to the policies: routing.people would show every
-- district's people to any transaction. Read with the caller's rights instead, so the
-- policies of the tables under it apply.
ALTER VIEW routing.people SET (security_invoker = true);

-- The trigger keeping representatives' open workload (routing.count_open_cases) runs
-- with the caller's rights too: it updates the representative of the case's own
-- district, which is in the scope of the transaction that changed the case.
