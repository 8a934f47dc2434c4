-- The departments a whistle may summon (DepartmentRegistered/Retired on district-*):
-- whom to tell of a whistle to a registered department, and of a deadline it missed.
CREATE TABLE notification.departments (
    district_id     text NOT NULL,
    department_code text NOT NULL,
    name_zh         text NOT NULL,
    duty_staff      text[] NOT NULL DEFAULT '{}',
    active          boolean NOT NULL DEFAULT true,
    PRIMARY KEY (district_id, department_code)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON notification.departments TO minqing_runtime;
