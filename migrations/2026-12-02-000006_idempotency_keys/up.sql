-- Idempotency keys: a create sent again with the same `Idempotency-Key` by
-- the same user within 24 hours answers with what the first one made, without
-- a second write. The key is claimed in the same transaction as the write, so
-- a key is recorded exactly when its record is. A user's keys older than 24
-- hours are forgotten when that user next claims one.
CREATE TABLE idempotency_keys (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- What the key was used for: the operation, and a SHA-256 of its input.
    operation text NOT NULL,
    fingerprint bytea NOT NULL,
    -- The record the first request made (set in the same transaction).
    entity_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
