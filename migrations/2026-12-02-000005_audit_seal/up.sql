-- The transaction that wrote each event (its xid8 as a number: xid8 has no
-- BRIN operator class). The sealer looks for events it has not sealed yet
-- only among those written by transactions that were still running when it
-- last sealed; the BRIN index finds them at the end of the table for almost
-- nothing per insert. The existing rows get this migration's transaction,
-- so the first seal covers them all.
ALTER TABLE audit_events
    ADD COLUMN tx bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX audit_events_tx_idx ON audit_events USING brin (tx);

-- The seal: a chain of blocks, each listing the events it covers and a keyed
-- hash (HMAC-SHA256 with AUDIT_SEAL_KEY, which the database never sees) over
-- them and the previous block (src/audit/seal.rs says exactly what is hashed).
CREATE TABLE audit_blocks (
    number       bigint      PRIMARY KEY CHECK (number > 0),
    sealed_at    timestamptz NOT NULL,
    -- Every transaction older than this had ended when the block was sealed:
    -- its events, if it committed, are in this block or an earlier one.
    horizon      bigint      NOT NULL,
    -- The newest transaction among the block's events.
    newest_tx    bigint      NOT NULL,
    -- The events sealed, in ascending order, and the last of them.
    event_ids    bigint[]    NOT NULL CHECK (cardinality(event_ids) > 0),
    last_event   bigint      NOT NULL,
    -- Whether it sealed every event that waited. A backlog is sealed in
    -- blocks of a bounded size, each taking the next events in id order;
    -- until the last of them the horizon stays where it was.
    complete     boolean     NOT NULL,
    -- SHA-256 of each event's sealed form, in the order of event_ids: tells
    -- which event changed.
    digests      bytea       NOT NULL,
    -- Events sealed in this block and every block before it.
    sealed_total bigint      NOT NULL,
    hash         bytea       NOT NULL CHECK (octet_length(hash) = 32),
    CHECK (octet_length(digests) = 32 * cardinality(event_ids))
);
-- The blocks that may hold events of transactions the newest horizon has
-- not passed yet.
CREATE INDEX audit_blocks_newest_tx_idx ON audit_blocks (newest_tx, last_event);

CREATE FUNCTION audit_blocks_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_blocks is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_blocks_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_blocks
    FOR EACH ROW EXECUTE FUNCTION audit_blocks_append_only();
CREATE TRIGGER audit_blocks_no_truncate
    BEFORE TRUNCATE ON audit_blocks
    FOR EACH STATEMENT EXECUTE FUNCTION audit_blocks_append_only();
