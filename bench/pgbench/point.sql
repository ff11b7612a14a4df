-- patient(id): the visible row and its PATIENT_READ event, in one transaction.
-- Patient ids of the bench are md5('<user>-<n>'); bench01 is user 1.
\set n random(1, 1000)
BEGIN;
SELECT id, name, date_of_birth, gender, email, phone, address, medical_history, created_by, created_at, updated_at
  FROM patients WHERE id = md5('1-' || :n)::uuid AND created_by = :uid::uuid LIMIT 1;
INSERT INTO audit_events (actor_id, action, entity_type, entity_id, request_id)
  VALUES (:uid::uuid, 'PATIENT_READ', 'PATIENT', md5('1-' || :n)::uuid, 'pgbench');
COMMIT;
