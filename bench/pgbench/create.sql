-- createPatient: the row and its PATIENT_CREATED event, as the server sends
-- it: one statement (so one transaction).
WITH p AS (INSERT INTO patients (name, date_of_birth, gender, email, phone, address, medical_history, created_by)
           VALUES ('Bench Patient', NULL, 'UNKNOWN', NULL, NULL, NULL, NULL, :uid::uuid)
           RETURNING id, name, date_of_birth, gender, email, phone, address, medical_history, created_by, created_at, updated_at),
     audit AS (INSERT INTO audit_events (actor_id, action, entity_type, entity_id, request_id, entity_ids)
               SELECT p.created_by, 'PATIENT_CREATED', 'PATIENT', p.id, 'pgbench', ARRAY[p.id] FROM p)
SELECT id, name, date_of_birth, gender, email, phone, address, medical_history, created_by, created_at, updated_at FROM p;
