-- Who is known, active staff of each district (eventkit/staff_roster.py): the intake
-- consumer folds it from the directory's and the staff accounts' events on
-- minqing.directory.v1, so that a staff token's subject is checked here, at the HTTP
-- edge, without reading routing's schema. One row per way a person holds a role (post:
-- station:<code>, street:<code>, department:<code>, staff_member, representative,
-- account); a post left stays as an inactive row. A consumer table: replaying the
-- directory topic (or the store) from the start folds it again to the same rows.
CREATE TABLE intake.staff_roster (
    district_id text    NOT NULL,
    person_id   text    NOT NULL,
    role        text    NOT NULL,
    post        text    NOT NULL,
    active      boolean NOT NULL,
    PRIMARY KEY (district_id, person_id, role, post)
);
-- A station's, a street's or a department's people are replaced together.
CREATE INDEX staff_roster_post ON intake.staff_roster (district_id, post);

-- Row-level security as everywhere (eventkit/migrations/0006_district_scope.sql).
ALTER TABLE intake.staff_roster ENABLE ROW LEVEL SECURITY;
CREATE POLICY district_scope ON intake.staff_roster TO minqing_runtime
    USING (minqing_meta.in_scope(district_id))
    WITH CHECK (minqing_meta.in_scope(district_id));

GRANT SELECT, INSERT, UPDATE, DELETE ON intake.staff_roster TO minqing_runtime;
