-- patient(id): the visible row and its PATIENT_READ event, as the server
-- sends it: one statement (so one transaction). Patient ids of the bench are
-- md5('<user>-<n>'); bench01 is user 1.
\set n random(1, 1000)
WITH p AS (SELECT id, name, date_of_birth, gender, email, phone, address, medical_history, created_by, created_at, updated_at
             FROM patients WHERE id = md5('1-' || :n)::uuid AND (:uid::uuid IS NULL OR created_by = :uid::uuid)),
     audit AS (INSERT INTO audit_events (actor_id, action, entity_type, entity_id, request_id, entity_ids)
               SELECT :uid::uuid, 'PATIENT_READ', 'PATIENT', p.id, 'pgbench', ARRAY[p.id] FROM p)
SELECT id, name, date_of_birth, gender, email, phone, address, medical_history, created_by, created_at, updated_at FROM p;
