-- The notification service's own state. The contact book, the rules' and templates'
-- district overrides and the webhook subscriptions are owned here (never in events, never
-- on Kafka). The directory, case and opinion tables are projections of events, kept to
-- know whom to tell. The outbox (deliveries) is written in the consumer's transaction and
-- worked by the sender after commit. The service runs as minqing_runtime.

CREATE SCHEMA IF NOT EXISTS notification;
GRANT USAGE ON SCHEMA notification TO minqing_runtime;

-- Staff contacts by staff id: representatives, liaison officers, station heads, street
-- supervisors, district admins. Addresses per channel, and the channels the person prefers.
CREATE TABLE notification.contacts (
    district_id      text NOT NULL,
    staff_id         text NOT NULL,
    name             text,
    role             text NOT NULL,
    email            text,
    mobile           text,
    wecom_user       text,
    wecom_robot      text,
    dingtalk_user    text,
    dingtalk_robot   text,
    dingtalk_secret  text,
    webhook_url      text,
    preferred        text[] NOT NULL DEFAULT '{email}',
    active           boolean NOT NULL DEFAULT true,
    updated_at       timestamptz NOT NULL,
    updated_by       text NOT NULL,
    PRIMARY KEY (district_id, staff_id)
);
CREATE INDEX contacts_role ON notification.contacts (district_id, role) WHERE active;

-- Per-district overrides of the rules (on/off, channels) and of the templates.
CREATE TABLE notification.rule_overrides (
    district_id  text NOT NULL,
    rule         text NOT NULL,
    enabled      boolean NOT NULL DEFAULT true,
    channels     text[],
    updated_at   timestamptz NOT NULL,
    updated_by   text NOT NULL,
    PRIMARY KEY (district_id, rule)
);

CREATE TABLE notification.template_overrides (
    district_id  text NOT NULL,
    template     text NOT NULL,
    subject      text NOT NULL,
    body         text NOT NULL,
    updated_at   timestamptz NOT NULL,
    updated_by   text NOT NULL,
    PRIMARY KEY (district_id, template)
);

-- What the rules need of the directory (from directory events).
CREATE TABLE notification.districts (
    district_id  text PRIMARY KEY,
    name_zh      text NOT NULL,
    timezone     text NOT NULL DEFAULT 'Asia/Shanghai',
    categories   jsonb NOT NULL DEFAULT '{}'
    -- category code -> [name_zh, name_en], from the published taxonomy
);

CREATE TABLE notification.streets (
    district_id  text NOT NULL,
    street_code  text NOT NULL,
    name_zh      text NOT NULL,
    supervisors  text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (district_id, street_code)
);

CREATE TABLE notification.stations (
    district_id             text NOT NULL,
    station_code            text NOT NULL,
    name_zh                 text NOT NULL,
    street_code             text,
    head_representative_id  text,
    liaison_officers        text[] NOT NULL DEFAULT '{}',
    active                  boolean NOT NULL DEFAULT true,
    PRIMARY KEY (district_id, station_code)
);

CREATE TABLE notification.representatives (
    district_id        text NOT NULL,
    representative_id  text NOT NULL,
    name_zh            text NOT NULL,
    PRIMARY KEY (district_id, representative_id)
);

-- The resident of an opinion, as intake sealed them: ciphertexts only, opened at send
-- time with the resident's key (a forgotten resident's do not open).
CREATE TABLE notification.opinions (
    opinion_id                text PRIMARY KEY,
    district_id               text NOT NULL,
    channel                   text NOT NULL,
    subject_id                text,
    phone_ciphertext          text,
    tracking_code_ciphertext  text,
    contact_consent           boolean NOT NULL DEFAULT false,
    submitted_at              timestamptz NOT NULL
);

-- Each case as far as the rules need it.
CREATE TABLE notification.cases (
    case_id            text PRIMARY KEY,
    district_id        text NOT NULL,
    opinion_id         text NOT NULL,
    category_code      text,
    priority           text NOT NULL,
    station_code       text,
    representative_id  text,
    queue              text,
    community          text,
    response_due       timestamptz,
    resolution_due     timestamptz,
    opened_at          timestamptz NOT NULL
);

-- Outside systems' webhook subscriptions, per district.
CREATE TABLE notification.subscriptions (
    subscription_id    text PRIMARY KEY,
    district_id        text NOT NULL,
    name               text NOT NULL,
    url                text NOT NULL,
    secret             text NOT NULL,
    previous_secret    text,
    previous_until     timestamptz,
    event_types        text[] NOT NULL DEFAULT '{}',
    status             text NOT NULL DEFAULT 'active'
                       CHECK (status IN ('active', 'paused', 'deleted')),
    created_at         timestamptz NOT NULL,
    created_by         text NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX subscriptions_active ON notification.subscriptions (district_id)
    WHERE status = 'active';

-- The outbox: one row per (source event, recipient, channel). The consumer writes it in
-- the transaction that moves its version gate; the sender claims rows, sends after
-- commit, and records each outcome. A row left 'sending' by a sender that died is
-- marked 'unknown' and never resent by itself.
CREATE TABLE notification.deliveries (
    delivery_id       uuid PRIMARY KEY,
    district_id       text NOT NULL,
    source_event_id   uuid NOT NULL,
    source_type       text NOT NULL,
    rule              text NOT NULL,
    recipient_kind    text NOT NULL CHECK (recipient_kind IN ('staff', 'resident', 'subscriber')),
    recipient         text NOT NULL,
    channel           text NOT NULL,
    template          text NOT NULL,
    case_id           text,
    opinion_id        text,
    context           jsonb NOT NULL DEFAULT '{}',
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown',
                                        'cancelled')),
    not_before        timestamptz NOT NULL,
    held              text,
    attempts          integer NOT NULL DEFAULT 0,
    last_error        text,
    created_at        timestamptz NOT NULL,
    source_committed  timestamptz,
    claimed_at        timestamptz,
    claimed_by        text,
    finished_at       timestamptz,
    UNIQUE (source_event_id, recipient_kind, recipient, channel)
);
CREATE INDEX deliveries_due ON notification.deliveries (not_before)
    WHERE status = 'pending';
CREATE INDEX deliveries_sending ON notification.deliveries (claimed_at)
    WHERE status = 'sending';
CREATE INDEX deliveries_case ON notification.deliveries (case_id);
CREATE INDEX deliveries_subscriber ON notification.deliveries (recipient, created_at)
    WHERE recipient_kind = 'subscriber';

-- Records for the per-district public topic, in the order their events were handled;
-- the publisher sends them and deletes them (the event store keeps the history).
CREATE TABLE notification.public_feed (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_id  text NOT NULL,
    event_id     uuid NOT NULL UNIQUE,
    envelope     jsonb NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA notification TO minqing_runtime;
