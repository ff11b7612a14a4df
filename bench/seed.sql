-- Bench data: the 20 users registered through the API ("bench01"...) each
-- get 1,000 patients with 3 doctors each, from a directory of 300 doctors.
-- Ages spread created_at so that the default order is meaningful; ids are
-- md5('<user>-<n>') so that pgbench can name a patient without a look-up.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO doctors (name, specialization, email, created_by)
SELECT 'Doctor ' || g,
       (ARRAY['Cardiology', 'Dermatology', 'General Practice', 'Neurology', 'Oncology'])[1 + g % 5],
       'doctor' || g || '@clinic.example',
       (SELECT id FROM users WHERE email = 'bench01@example.org')
FROM generate_series(1, 300) g;

INSERT INTO patients (id, name, date_of_birth, gender, email, phone, address, medical_history, created_by, created_at, updated_at)
SELECT md5(u.n || '-' || g)::uuid,
       'Patient ' || u.n || '-' || g,
       date '1950-01-01' + (g * 7) % 20000,
       (ARRAY['FEMALE', 'MALE', 'OTHER', 'UNKNOWN'])[1 + g % 4],
       'patient' || g || '@mail.example',
       '+1 555 ' || lpad(g::text, 4, '0'),
       g || ' Example Street',
       'History of patient ' || g || '. No known allergies.',
       u.id,
       now() - make_interval(secs => g * 60 + u.n),
       now() - make_interval(secs => g * 60 + u.n)
FROM (SELECT id, row_number() OVER (ORDER BY email) AS n FROM users WHERE email LIKE 'bench%@example.org') u,
     generate_series(1, 1000) g;

WITH d AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM doctors),
     p AS (SELECT id, created_by, row_number() OVER (ORDER BY id) AS n FROM patients)
INSERT INTO mappings (patient_id, doctor_id, assigned_by)
SELECT p.id, d.id, p.created_by
FROM p CROSS JOIN generate_series(0, 2) k JOIN d ON d.n = (p.n + k * 100) % 300;
COMMIT;
ANALYZE;
