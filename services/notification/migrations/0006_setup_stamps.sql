-- A stamp per district that changes whenever what planning and sending read of the
-- district changes: its time zone and categories, streets, stations, representatives,
-- departments, the contact book, the rule and template overrides, the subscriptions.
-- The planner and the sender keep a district's setup in memory between batches and
-- check its stamp once per batch (services/notification/setup.py): a change made by a
-- directory event, an admin request, the CLI or another process is seen by the next
-- batch. Stamps come from one sequence, so a stamp written by a transaction that rolled
-- back is never seen again.
CREATE SEQUENCE notification.setup_stamp;

CREATE TABLE notification.setup_stamps (
    district_id  text PRIMARY KEY,
    stamp        bigint NOT NULL
);

ALTER TABLE notification.setup_stamps ENABLE ROW LEVEL SECURITY;
CREATE POLICY district_scope ON notification.setup_stamps TO minqing_runtime
    USING (minqing_meta.in_scope(district_id))
    WITH CHECK (minqing_meta.in_scope(district_id));

CREATE FUNCTION notification.touch_setup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_district text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        v_district := OLD.district_id;
    ELSE
        v_district := NEW.district_id;
    END IF;
    INSERT INTO notification.setup_stamps (district_id, stamp)
    VALUES (v_district, nextval('notification.setup_stamp'))
    ON CONFLICT (district_id) DO UPDATE SET stamp = excluded.stamp;
    RETURN NULL;
END $$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'districts', 'streets', 'stations', 'representatives', 'departments', 'contacts',
        'rule_overrides', 'template_overrides', 'subscriptions'
    ] LOOP
        EXECUTE format(
            'CREATE TRIGGER touch_setup AFTER INSERT OR UPDATE OR DELETE ON notification.%I '
            'FOR EACH ROW EXECUTE FUNCTION notification.touch_setup()', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT, UPDATE ON notification.setup_stamps TO minqing_runtime;
GRANT USAGE ON SEQUENCE notification.setup_stamp TO minqing_runtime;
