-- How many events concern each of the patients the viewer may see ($2: as in
-- access_log.sql), in one statement for a page of patients.
SELECT p.id AS patient_id,
       (SELECT count(*) FROM audit_events a WHERE a.entity_ids @> ARRAY[p.id]) AS events
FROM patients p
WHERE p.id = ANY($1) AND ($2::uuid IS NULL OR p.created_by = $2)
