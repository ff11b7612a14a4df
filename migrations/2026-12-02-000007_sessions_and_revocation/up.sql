-- Sessions, token revocation and disabled accounts.

-- A session: what one sign-in (a login or a registration) started, carried
-- on by a chain of refresh tokens (their family_id is the session's id).
CREATE TABLE sessions (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The User-Agent of the client that signed in, cut to 200 characters.
    user_agent   text        CHECK (char_length(user_agent) <= 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- The last refresh (or the sign-in).
    last_used_at timestamptz NOT NULL DEFAULT now(),
    -- When its newest refresh token expires.
    expires_at   timestamptz NOT NULL,
    -- Logged out, revoked, or ended with every other session of its user.
    ended_at     timestamptz
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at DESC) WHERE ended_at IS NULL;

-- The refresh-token families issued so far become sessions, live or not.
INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ended_at)
SELECT family_id, user_id, min(created_at), max(created_at), max(expires_at),
       CASE WHEN bool_and(used_at IS NOT NULL OR revoked_at IS NOT NULL)
            THEN max(coalesce(revoked_at, used_at)) END
FROM refresh_tokens
GROUP BY family_id, user_id;
ALTER TABLE refresh_tokens
    ADD CONSTRAINT refresh_tokens_family_id_fkey
    FOREIGN KEY (family_id) REFERENCES sessions (id) ON DELETE CASCADE;

ALTER TABLE users
    -- Every access token carries the version it was issued under; raising
    -- it (a password change, logging out everywhere, disabling) refuses
    -- the older ones.
    ADD COLUMN token_version    integer     NOT NULL DEFAULT 0,
    -- When token_version last rose: what each replica polls for.
    ADD COLUMN tokens_revoked_at timestamptz,
    -- Set while an admin has disabled the account.
    ADD COLUMN disabled_at      timestamptz;
CREATE INDEX users_tokens_revoked_at_idx ON users (tokens_revoked_at) WHERE tokens_revoked_at IS NOT NULL;

-- The account changes' audit events.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_action_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_check CHECK (action IN (
    'REGISTER', 'LOGIN_SUCCEEDED', 'LOGIN_FAILED',
    'PATIENT_CREATED', 'PATIENT_READ', 'PATIENTS_READ', 'PATIENT_UPDATED', 'PATIENT_DELETED',
    'DOCTOR_CREATED', 'DOCTOR_UPDATED', 'DOCTOR_DELETED',
    'MAPPING_CREATED', 'MAPPING_DELETED',
    'PASSWORD_CHANGED', 'MFA_ENABLED', 'MFA_DISABLED', 'SESSION_REVOKED', 'USER_DISABLED', 'USER_ENABLED'));
