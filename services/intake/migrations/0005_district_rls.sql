-- Row-level security between districts on intake's tables and the residents' keys
-- (issue 14; the mechanism is eventkit/migrations/0006_district_scope.sql). Every table
-- here holds one district's data: the services' roles see and write only the rows of the
-- district their transaction declared (eventkit.db.scope), or every district's when the
-- work is about all of them by nature and says so ('*': the QR code's station looked up
-- by its code alone, a tracking code looked up before its district is known, the totals
-- of every station's QR page views).
--
-- Two tables had no district:
-- - intake.feedback: a rating is given for the resident's opinion, in the opinion's
--   district (FeedbackSubmitted carries it, even when the case was transferred to
--   another district). The column is filled from the opinion.
-- - intake.idempotency_keys: the stored answer names the district the opinion went to
--   (a tracking code: a credential of that district's opinion). Filled from the answer.
-- A column of their own rather than a policy through another table: a sub-query would
-- cost a look-up per row read, and the column keeps the policy the same one-line
-- comparison as everywhere else.
ALTER TABLE intake.feedback ADD COLUMN district_id text;
UPDATE intake.feedback f SET district_id = o.district_id
  FROM intake.opinions o WHERE o.opinion_id = f.opinion_id;
UPDATE intake.feedback f SET district_id = c.district_id
  FROM intake.cases c WHERE f.district_id IS NULL AND c.case_id = f.case_id;
-- A rating of an opinion that is gone (none should be) has no district to be kept in.
DELETE FROM intake.feedback WHERE district_id IS NULL;
ALTER TABLE intake.feedback ALTER COLUMN district_id SET NOT NULL;

ALTER TABLE intake.idempotency_keys ADD COLUMN district_id text;
UPDATE intake.idempotency_keys SET district_id = response ->> 'district';
-- A key whose answer names no district (none should be) would be seen by nobody: it goes.
DELETE FROM intake.idempotency_keys WHERE district_id IS NULL;
ALTER TABLE intake.idempotency_keys ALTER COLUMN district_id SET NOT NULL;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'intake.districts', 'intake.stations', 'intake.streets', 'intake.communities',
        'intake.representatives', 'intake.taxonomies', 'intake.station_representatives',
        'intake.opinions', 'intake.idempotency_keys', 'intake.cases', 'intake.case_steps',
        'intake.feedback', 'intake.reception_days', 'intake.qr_scans',
        'privacy.subject_keys', 'privacy.forgotten_subjects'
    ] LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($q$
            CREATE POLICY district_scope ON %s TO minqing_runtime
                USING (minqing_meta.in_scope(district_id))
                WITH CHECK (minqing_meta.in_scope(district_id))$q$, t);
    END LOOP;
END $$;
