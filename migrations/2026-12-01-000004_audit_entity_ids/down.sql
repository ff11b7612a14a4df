ALTER TABLE audit_events DROP CONSTRAINT audit_events_action_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_check CHECK (action IN (
    'REGISTER', 'LOGIN_SUCCEEDED', 'LOGIN_FAILED',
    'PATIENT_CREATED', 'PATIENT_READ', 'PATIENT_UPDATED', 'PATIENT_DELETED',
    'DOCTOR_CREATED', 'DOCTOR_UPDATED', 'DOCTOR_DELETED',
    'MAPPING_CREATED', 'MAPPING_DELETED')) NOT VALID;
CREATE INDEX audit_events_entity_idx ON audit_events (entity_id, id);
DROP INDEX audit_events_entity_ids_idx;
ALTER TABLE audit_events DROP COLUMN entity_ids;
