-- Every record an event concerns, without repeats: for a mapping event the
-- mapping, its patient and its doctor; for PATIENTS_READ (a list or nested
-- read) the patients served; otherwise the entity itself (empty for a failed
-- login of an unknown email). `auditEvents(entityId:)` and a patient's access
-- log match it through the GIN index.
ALTER TABLE audit_events
    ADD COLUMN entity_ids uuid[] NOT NULL DEFAULT '{}'
        CHECK (array_position(entity_ids, NULL) IS NULL);

-- The existing rows: the entity, and for a mapping that still exists its
-- patient and doctor (a removed mapping's pair was never recorded, so its
-- events keep the mapping alone). The trail refuses updates; the migration
-- lifts that for this one statement.
ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_or_delete;
UPDATE audit_events e
SET entity_ids = CASE
    WHEN e.entity_id IS NULL THEN '{}'
    WHEN e.entity_type = 'MAPPING' THEN ARRAY[e.entity_id] || coalesce(
        (SELECT ARRAY[m.patient_id, m.doctor_id] FROM mappings m WHERE m.id = e.entity_id), '{}')
    ELSE ARRAY[e.entity_id]
END;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_or_delete;

-- From here on every insert says which records it concerns.
ALTER TABLE audit_events ALTER COLUMN entity_ids DROP DEFAULT;

CREATE INDEX audit_events_entity_ids_idx ON audit_events USING gin (entity_ids);
DROP INDEX audit_events_entity_idx;

-- The read of patients through a list or a nested field.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_action_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_check CHECK (action IN (
    'REGISTER', 'LOGIN_SUCCEEDED', 'LOGIN_FAILED',
    'PATIENT_CREATED', 'PATIENT_READ', 'PATIENTS_READ', 'PATIENT_UPDATED', 'PATIENT_DELETED',
    'DOCTOR_CREATED', 'DOCTOR_UPDATED', 'DOCTOR_DELETED',
    'MAPPING_CREATED', 'MAPPING_DELETED'));
