-- The classifier version in use, as the district's stream says (its last
-- ClassifierTrained), kept with the district's directory row by the directory projection
-- and rebuilt with it. routing.classifier_models keeps the fitted arrays and is left
-- alone by a rebuild: until now its newest row was taken as the model in use, so a table
-- that lost its rows (restored from an older backup, recreated) made routing classify
-- with the keywords alone without a word, and the next training published a version
-- number already published. Now the version in use comes from the events; a version the
-- table does not hold is reported and fitted again from its event
-- (services/routing/training.py, Training.reproduce), and new versions follow the
-- events' numbering.
ALTER TABLE routing.districts ADD COLUMN classifier_version integer;

UPDATE routing.districts d
   SET classifier_version = t.version
  FROM (SELECT e.district_id, max((e.data ->> 'version')::integer) AS version
          FROM eventstore.events e
         WHERE e.category = 'district' AND e.event_type = 'ClassifierTrained'
         GROUP BY e.district_id) t
 WHERE t.district_id = d.district_id;
