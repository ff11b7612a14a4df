DROP TABLE audit_blocks;
DROP FUNCTION audit_blocks_append_only();
DROP INDEX audit_events_tx_idx;
ALTER TABLE audit_events DROP COLUMN tx;
