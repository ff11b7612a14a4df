-- One page of each patient's access log: the events whose entity_ids hold
-- the patient, newest first, for those of the patients the viewer may see
-- ($2: the one creator whose patients the viewer sees, NULL for admins; see
-- patients::access::sees_only). A LATERAL subquery per patient, so that each
-- gets its own LIMIT from the GIN index, in one statement for the batch.
SELECT p.id AS patient_id, e.id, e.at, e.actor_id, e.action, e.entity_type, e.entity_id, e.request_id, e.entity_ids
FROM patients p
CROSS JOIN LATERAL (
    SELECT a.id, a.at, a.actor_id, a.action, a.entity_type, a.entity_id, a.request_id, a.entity_ids
    FROM audit_events a
    WHERE a.entity_ids @> ARRAY[p.id] AND ($3::bigint IS NULL OR a.id < $3)
    ORDER BY a.id DESC
    LIMIT $4
) e
WHERE p.id = ANY($1) AND ($2::uuid IS NULL OR p.created_by = $2)
ORDER BY p.id, e.id DESC
