CREATE SCHEMA IF NOT EXISTS consumers;
GRANT USAGE ON SCHEMA consumers TO minqing_runtime;

-- The version gate of the consumer runtime: per consumer and stream, the last stream
-- version applied. Written in the same transaction as the handler's effect: a record
-- delivered again is recognised and skipped, and a record that arrives after a gap
-- (its predecessors published out of order, dead-lettered or expired from the topic)
-- makes the runtime apply the missing events from the store first.

CREATE TABLE consumers.stream_positions (
    consumer       text   NOT NULL,
    stream_id      text   NOT NULL,
    stream_version bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, stream_id)
);

GRANT SELECT, INSERT, UPDATE ON consumers.stream_positions TO minqing_runtime;
