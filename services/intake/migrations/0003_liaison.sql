-- What the QR page shows of a station's coming reception days (ReceptionDayScheduled,
-- ReceptionDayCancelled, ReceptionDayMoved from minqing.directory.v1), whether a
-- representative is a leading cadre (领导干部代表: their days are shown as such), and the
-- count of each station's QR page views per local day (扫码量), recorded as
-- QrScansRecorded events while it changes (services/intake/scans.py).

ALTER TABLE intake.representatives ADD COLUMN leading_cadre boolean NOT NULL DEFAULT false;

CREATE TABLE intake.reception_days (
    district_id       text    NOT NULL,
    representative_id text    NOT NULL,
    station_code      text    NOT NULL,
    day               date    NOT NULL,
    starts_at         time,
    ends_at           time,
    status            text    NOT NULL DEFAULT 'scheduled',
    moved_to          date,
    PRIMARY KEY (district_id, representative_id, station_code, day)
);
CREATE INDEX reception_days_station_idx ON intake.reception_days (district_id, station_code, day);

-- One row per station and local day: page views counted as they happen (one increment
-- each), and the totals last recorded as an event.
CREATE TABLE intake.qr_scans (
    district_id       text    NOT NULL,
    station_code      text    NOT NULL,
    day               date    NOT NULL,
    scans             integer NOT NULL DEFAULT 0,
    recorded_scans    integer NOT NULL DEFAULT 0,
    recorded_opinions integer NOT NULL DEFAULT 0,
    PRIMARY KEY (district_id, station_code, day)
);
CREATE INDEX qr_scans_unrecorded_idx ON intake.qr_scans (day) WHERE scans <> recorded_scans;

GRANT SELECT, INSERT, UPDATE, DELETE ON intake.reception_days, intake.qr_scans TO minqing_runtime;
