-- A million patients for one more user ("big@example.org"), for the paging
-- and search timings.
\set ON_ERROR_STOP on
INSERT INTO patients (name, gender, created_by, created_at, updated_at)
SELECT 'Person ' || md5(g::text), 'UNKNOWN', (SELECT id FROM users WHERE email = 'big@example.org'),
       now() - make_interval(secs => g), now() - make_interval(secs => g)
FROM generate_series(1, 1000000) g;
ANALYZE patients;
