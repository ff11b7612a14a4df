-- For `audit verify`: events that more than one block lists, with the first
-- block that lists each and the next one, earliest repeat first.
SELECT id, blocks[1] AS first_block, blocks[2] AS again_in
FROM (
    SELECT s.id, array_agg(b.number ORDER BY b.number) AS blocks
    FROM audit_blocks b CROSS JOIN LATERAL unnest(b.event_ids) AS s(id)
    GROUP BY s.id
    HAVING count(*) > 1
) repeated
ORDER BY again_in, id
