-- The district's trained text classifiers (services/routing/classifier_model.py): one
-- row per ClassifierTrained event, written in the transaction that appends it. The
-- event names the model by its digest and records how to fit it again; the row keeps the
-- fitted arrays, which are too large for an event. The newest row of a district is the
-- model in use; the district context loads it with the district's directory.
CREATE TABLE routing.classifier_models (
    district_id       text NOT NULL,
    version           integer NOT NULL,
    taxonomy_version  integer NOT NULL,
    model_digest      text NOT NULL,
    model             bytea NOT NULL,
    trained_at        timestamptz NOT NULL,
    PRIMARY KEY (district_id, version)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON routing.classifier_models TO minqing_runtime;
