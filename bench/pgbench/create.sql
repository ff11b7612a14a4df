-- createPatient: the row and its PATIENT_CREATED event, in one transaction.
BEGIN;
INSERT INTO patients (name, gender, created_by) VALUES ('Bench Patient', 'UNKNOWN', :uid::uuid)
  RETURNING id AS pid, name, date_of_birth, gender, email, phone, address, medical_history, created_by, created_at, updated_at \gset
INSERT INTO audit_events (actor_id, action, entity_type, entity_id, request_id)
  VALUES (:uid::uuid, 'PATIENT_CREATED', 'PATIENT', :pid::uuid, 'pgbench');
COMMIT;
