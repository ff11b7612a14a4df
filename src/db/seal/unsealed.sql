-- The committed events that no block seals yet and that the sealer looks
-- for ($1: the newest block's horizon, 0 before the first block). Only
-- transactions at or after the horizon can have written one: every older
-- transaction had ended when that block was sealed, so its events are in a
-- block already. Of those, the events already in a block that may hold such
-- transactions' events (newest_tx at or after the horizon) are left out.
-- At most $2, in id order.
SELECT e.id, e.at, e.actor_id, e.action, e.entity_type, e.entity_id, e.request_id, e.entity_ids, e.tx
FROM audit_events e
WHERE e.tx >= $1
  AND NOT EXISTS (
      SELECT 1
      FROM audit_blocks b CROSS JOIN LATERAL unnest(b.event_ids) AS s(id)
      WHERE b.newest_tx >= $1 AND s.id = e.id)
ORDER BY e.id
LIMIT $2
