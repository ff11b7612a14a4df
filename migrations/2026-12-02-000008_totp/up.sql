-- The second factor: TOTP (RFC 6238) and single-use recovery codes.

-- Set while the user has MFA on: a login then needs a code.
ALTER TABLE users ADD COLUMN mfa_enabled_at timestamptz;

-- A user's authenticator secret: being enrolled (users.mfa_enabled_at is
-- null), or in use. Never stored in the clear: XChaCha20-Poly1305 under a
-- key derived from MFA_ENCRYPTION_KEY, bound to the user's id, as the
-- 24-byte nonce followed by the ciphertext and its tag.
CREATE TABLE totp_secrets (
    user_id        uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret  bytea       NOT NULL CHECK (octet_length(sealed_secret) BETWEEN 40 AND 256),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- The 30-second step of the last code accepted: a code is accepted at
    -- most once, and never one older than the last.
    last_used_step bigint
);

-- Recovery codes, stored only as SHA-256 hashes; each is usable once.
CREATE TABLE recovery_codes (
    user_id   uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea       NOT NULL CHECK (octet_length(code_hash) = 32),
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);
