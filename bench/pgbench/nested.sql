-- The statements the server sends for the nested read of 50 patients with
-- their doctors, mappings and users. pgbench cannot pass the page's ids from
-- one statement to the next, so the later ones select them again in a
-- subquery (slightly more work than the server's id arrays). Last, the read's
-- PATIENTS_READ event, naming the 50 patients served.
SELECT id, name, date_of_birth, gender, email, phone, address, medical_history, created_by, created_at, updated_at
  FROM patients WHERE created_by = :uid::uuid ORDER BY created_at DESC, id DESC LIMIT 51;
SELECT id, name, email, role, created_at FROM users WHERE id = ANY(ARRAY[:uid::uuid]);
SELECT m.patient_id, d.id, d.name, d.specialization, d.email, d.phone, d.license_number, d.created_by, d.created_at, d.updated_at
  FROM mappings m JOIN doctors d ON d.id = m.doctor_id JOIN patients p ON p.id = m.patient_id
  WHERE m.patient_id = ANY(ARRAY(SELECT id FROM patients WHERE created_by = :uid::uuid ORDER BY created_at DESC, id DESC LIMIT 50))
    AND p.created_by = :uid::uuid ORDER BY m.created_at, m.id;
SELECT m.id, m.patient_id, m.doctor_id, m.assigned_by, m.created_at
  FROM mappings m JOIN patients p ON p.id = m.patient_id
  WHERE m.patient_id = ANY(ARRAY(SELECT id FROM patients WHERE created_by = :uid::uuid ORDER BY created_at DESC, id DESC LIMIT 50))
    AND p.created_by = :uid::uuid ORDER BY m.created_at, m.id;
SELECT id, name, email, role, created_at FROM users WHERE id = ANY(ARRAY[:uid::uuid]);
SELECT id, name, specialization, email, phone, license_number, created_by, created_at, updated_at FROM doctors
  WHERE id = ANY(ARRAY(SELECT doctor_id FROM mappings WHERE patient_id = ANY(ARRAY(
    SELECT id FROM patients WHERE created_by = :uid::uuid ORDER BY created_at DESC, id DESC LIMIT 50))));
INSERT INTO audit_events (actor_id, action, entity_type, entity_id, request_id, entity_ids)
  VALUES (:uid::uuid, 'PATIENTS_READ', 'PATIENT', NULL, 'pgbench',
          ARRAY(SELECT id FROM patients WHERE created_by = :uid::uuid ORDER BY created_at DESC, id DESC LIMIT 50));
