-- Row-level security between districts on notification's tables (issue 14; the
-- mechanism is eventkit/migrations/0006_district_scope.sql). Every table of the schema
-- holds one district's data and has its district_id: the contact book and the overrides
-- (configuration), the projections of the directory, opinions and cases, the webhook
-- subscriptions, the outbox and the public feed. The services' roles see and write only
-- the rows of the district their transaction declared (eventkit.db.scope). Work about
-- every district by nature declares '*' (eventkit.db.ALL_DISTRICTS) and says why: the
-- sender claiming due deliveries of all districts, the publisher draining the public
-- feed, the reconciliation of deliveries left 'sending' by a sender that died.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'contacts', 'rule_overrides', 'template_overrides', 'districts', 'streets',
        'stations', 'representatives', 'departments', 'opinions', 'cases',
        'subscriptions', 'deliveries', 'public_feed'
    ] LOOP
        EXECUTE format('ALTER TABLE notification.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($q$
            CREATE POLICY district_scope ON notification.%I TO minqing_runtime
                USING (minqing_meta.in_scope(district_id))
                WITH CHECK (minqing_meta.in_scope(district_id))$q$, t);
    END LOOP;
END $$;
