-- Residents' keys are stored wrapped with the vault's key (eventkit.privacy, key id and
-- all), no longer 32 bytes in clear; keys stored before still open and are wrapped again
-- by `minqing keys rewrap`, run as the owner (the services may not UPDATE this table).

ALTER TABLE privacy.subject_keys DROP CONSTRAINT subject_keys_key_check;
ALTER TABLE privacy.subject_keys ADD CONSTRAINT subject_keys_key_check
    CHECK (length(key) = 32 OR (get_byte(key, 0) = 1 AND length(key) BETWEEN 63 AND 200));
