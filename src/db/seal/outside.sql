-- For `audit verify`: every event no block lists, oldest first, with what
-- tells a late commit from one added afterwards. A full pass over the trail.
SELECT e.id, e.at, e.tx
FROM audit_events e
WHERE NOT EXISTS (
    SELECT 1 FROM audit_blocks b CROSS JOIN LATERAL unnest(b.event_ids) AS s(id) WHERE s.id = e.id)
ORDER BY e.id
