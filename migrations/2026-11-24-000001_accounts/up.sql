-- Accounts: users, their refresh tokens (hashes only) and failed logins.

CREATE TABLE users (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    -- As the user typed it.
    email         text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    -- The email lower-cased by the server (not by the database's locale):
    -- what makes emails unique case-insensitively and what login looks up.
    email_key     text        NOT NULL CONSTRAINT users_email_key UNIQUE,
    password_hash text        NOT NULL,
    role          text        NOT NULL DEFAULT 'USER' CHECK (role IN ('USER', 'ADMIN')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A refresh token is stored only as the SHA-256 of its random bytes. Each
-- refresh retires the presented token (used_at) and issues a new one in the
-- same family; presenting a retired token revokes every token of the user.
CREATE TABLE refresh_tokens (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid        NOT NULL,
    token_hash  bytea       NOT NULL CHECK (octet_length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE UNIQUE INDEX refresh_tokens_token_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

-- Failed logins, counted per lower-cased email for throttling; shared by
-- every replica because it lives here.
CREATE TABLE login_failures (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_key  text        NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email_key_at_idx ON login_failures (email_key, at);
