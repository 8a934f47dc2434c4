-- Staff find a case by the tracking code a resident reads out (issue 13): intake records
-- a keyed hash of the code on OpinionSubmitted (tracking_ref, never the code itself, which
-- only intake keeps); the case keeps it, a transferred case its opinion's. Row-level
-- security on routing.cases already covers the column.
ALTER TABLE routing.cases ADD COLUMN tracking_ref text;
CREATE INDEX cases_tracking_ref_idx ON routing.cases (district_id, tracking_ref)
    WHERE tracking_ref IS NOT NULL;
