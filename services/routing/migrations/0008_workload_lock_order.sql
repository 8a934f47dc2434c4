-- The open-workload trigger of 0001, taking the counters' row locks in one order.
-- A case moved from one representative to another (a reassignment, an escalation)
-- updates both counters; the transaction holds each row until it ends. Two transactions
-- moving cases between the same two representatives in opposite directions would lock
-- them in opposite orders and deadlock (the server breaks the cycle after
-- deadlock_timeout by failing one). Both rows are now locked first, in the order of
-- their ids (bytewise, as routing sorts the new cases it writes: case_projection.py),
-- with the lock the UPDATEs below take anyway.
CREATE OR REPLACE FUNCTION routing.count_open_cases() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.representative_id IS NOT DISTINCT FROM NEW.representative_id
       AND OLD.is_open = NEW.is_open THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.is_open AND NEW.is_open
       AND OLD.representative_id IS NOT NULL AND NEW.representative_id IS NOT NULL THEN
        PERFORM 1 FROM routing.representatives
         WHERE district_id = NEW.district_id
           AND representative_id IN (OLD.representative_id, NEW.representative_id)
         ORDER BY representative_id COLLATE "C"
           FOR NO KEY UPDATE;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.is_open AND OLD.representative_id IS NOT NULL THEN
        UPDATE routing.representatives SET open_cases = open_cases - 1
         WHERE district_id = OLD.district_id AND representative_id = OLD.representative_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.is_open AND NEW.representative_id IS NOT NULL THEN
        UPDATE routing.representatives SET open_cases = open_cases + 1
         WHERE district_id = NEW.district_id AND representative_id = NEW.representative_id;
    END IF;
    RETURN NULL;
END
$$;
