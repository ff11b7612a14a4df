-- How many committed events wait for the next seal, and when the oldest of
-- them happened: unsealed.sql, counted, from the newest block's horizon.
WITH horizon AS (
    SELECT coalesce((SELECT horizon FROM audit_blocks ORDER BY number DESC LIMIT 1), 0) AS tx
)
SELECT count(*) AS events, min(e.at) AS oldest
FROM audit_events e, horizon h
WHERE e.tx >= h.tx
  AND NOT EXISTS (
      SELECT 1
      FROM audit_blocks b CROSS JOIN LATERAL unnest(b.event_ids) AS s(id)
      WHERE b.newest_tx >= h.tx AND s.id = e.id)
