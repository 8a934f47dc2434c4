-- Residents' texts sealed inside the events (eventkit.sealed_texts, docs/privacy.md): one
-- random AES-256 key per matter (per opinion: its text, address, point and attachments),
-- wrapped with the vault's key like a resident's key. Deleting the row (a request to be
-- forgotten, the end of the district's retention) shreds every copy of the sealed texts,
-- in the append-only event store, in Kafka and in audit archives, chains intact.

CREATE TABLE privacy.text_keys (
    key_id      text        PRIMARY KEY,
    district_id text        NOT NULL,
    key         bytea       NOT NULL
                CHECK (get_byte(key, 0) = 1 AND length(key) BETWEEN 63 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Row-level security as everywhere (eventkit/migrations/0006_district_scope.sql).
ALTER TABLE privacy.text_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY district_scope ON privacy.text_keys TO minqing_runtime
    USING (minqing_meta.in_scope(district_id))
    WITH CHECK (minqing_meta.in_scope(district_id));

-- DELETE: forgetting and retention are the deletions the services may do (no UPDATE but
-- the owner's `minqing keys rewrap`).
GRANT SELECT, INSERT, DELETE ON privacy.text_keys TO minqing_runtime;
