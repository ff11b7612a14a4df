-- As unsealed.sql, while a backlog is sealed block after block: the next
-- $3 events after id $2, the previous block's last. The rows come in id
-- order from the primary key and stop at the limit; `tx + 0` keeps the
-- planner from reading every event of the backlog through the tx index
-- and sorting them (it cannot tell how many recent transactions there are).
-- Blocks that end at or before $2 hold none of these ids.
SELECT e.id, e.at, e.actor_id, e.action, e.entity_type, e.entity_id, e.request_id, e.entity_ids, e.tx
FROM audit_events e
WHERE e.id > $2
  AND e.tx + 0 >= $1
  AND NOT EXISTS (
      SELECT 1
      FROM audit_blocks b CROSS JOIN LATERAL unnest(b.event_ids) AS s(id)
      WHERE b.newest_tx >= $1 AND b.last_event > $2 AND s.id = e.id)
ORDER BY e.id
LIMIT $3
