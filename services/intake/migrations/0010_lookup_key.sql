-- The blind index's key leaves the database (eventkit/blind_index.py, docs/privacy.md).
--
-- Until now the key of `lookup_hash` (residents' phone numbers) and of the tracking refs
-- was `privacy.lookup_key`, random and kept in this database: a copy of the database
-- held both the key and the hashes, and so every indexed resident's number. The key
-- now comes from the environment (MINQING_PRIVACY_LOOKUP_KEY, with its id and previous
-- keys), and each hash is stored with the id of the key that made it.
--
-- A migration cannot know the environment's key, so it cannot re-hash anything. On a
-- database that already indexed numbers, or recorded opinions (whose events carry
-- tracking refs), the old key stays readable as the key id 'legacy' until
-- `minqing privacy reindex` has re-hashed every row with the current key; the reindex
-- then drops `privacy.lookup_key`. On a database with nothing made with it (a new one),
-- it is dropped here.

-- NULL beside a hash: made by an earlier version, i.e. with the database's key.
ALTER TABLE privacy.subject_keys ADD COLUMN lookup_key_id text;
UPDATE privacy.subject_keys SET lookup_key_id = 'legacy' WHERE lookup_hash IS NOT NULL;

-- The reindex is recorded like every other privacy operation.
ALTER TABLE privacy.rights_requests DROP CONSTRAINT rights_requests_kind_check;
ALTER TABLE privacy.rights_requests ADD CONSTRAINT rights_requests_kind_check
    CHECK (kind IN ('find', 'export', 'forget', 'retention', 'reindex'));

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM privacy.subject_keys WHERE lookup_hash IS NOT NULL)
       AND NOT EXISTS (SELECT 1 FROM eventstore.events WHERE event_type = 'OpinionSubmitted')
    THEN
        DROP TABLE privacy.lookup_key;
    END IF;
END $$;
