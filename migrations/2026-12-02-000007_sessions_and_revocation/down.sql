ALTER TABLE audit_events DROP CONSTRAINT audit_events_action_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_check CHECK (action IN (
    'REGISTER', 'LOGIN_SUCCEEDED', 'LOGIN_FAILED',
    'PATIENT_CREATED', 'PATIENT_READ', 'PATIENTS_READ', 'PATIENT_UPDATED', 'PATIENT_DELETED',
    'DOCTOR_CREATED', 'DOCTOR_UPDATED', 'DOCTOR_DELETED',
    'MAPPING_CREATED', 'MAPPING_DELETED'));
DROP INDEX users_tokens_revoked_at_idx;
ALTER TABLE users DROP COLUMN disabled_at, DROP COLUMN tokens_revoked_at, DROP COLUMN token_version;
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_family_id_fkey;
DROP TABLE sessions;
