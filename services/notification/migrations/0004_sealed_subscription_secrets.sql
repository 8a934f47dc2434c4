-- Webhook subscription secrets are sealed (services/notification/subscriptions.py):
-- AES-256-GCM under a key derived from MINQING_PRIVACY_KEY, bound to the subscription,
-- stored as 'sealed:<key id>:<base64url>'. Rows written in clear by earlier versions stay
-- readable; the service seals them on the subscription's next write, and
-- `minqing keys rewrap` (run as the owner) seals every one of them at once, and seals
-- again what a previous key sealed.
COMMENT ON COLUMN notification.subscriptions.secret IS
    'signing secret, sealed: sealed:<key id>:<base64url(nonce|ciphertext|tag)>; '
    'in clear only in rows from before sealing (until the next write or minqing keys rewrap)';
COMMENT ON COLUMN notification.subscriptions.previous_secret IS
    'the secret before the last rotation, sealed like secret; signs until previous_until';
