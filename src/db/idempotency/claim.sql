-- $1 user, $2 key, $3 operation, $4 fingerprint. One row changed: claimed.
WITH forgotten AS (
    DELETE FROM idempotency_keys
    WHERE user_id = $1 AND key <> $2 AND created_at < now() - interval '24 hours'
)
INSERT INTO idempotency_keys (user_id, key, operation, fingerprint)
VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, key) DO UPDATE
    SET operation = excluded.operation,
        fingerprint = excluded.fingerprint,
        entity_id = NULL,
        created_at = now()
    WHERE idempotency_keys.created_at < now() - interval '24 hours'
