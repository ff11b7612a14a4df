//! Rows and named queries of the audit trail's seal: the blocks, the events
//! waiting for one, and what `audit verify` reads.

use chrono::{DateTime, Utc};
use diesel::{
    pg::Pg,
    prelude::*,
    sql_types::{BigInt, Bool, Nullable, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{
    audit::AuditRow,
    schema::{audit_blocks, audit_events},
};

/// An event as the seal covers it: every column, the writing transaction
/// included.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(Pg))]
pub struct SealedEventRow {
    #[diesel(embed)]
    pub event: AuditRow,
    pub tx: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_blocks, check_for_backend(Pg))]
pub struct BlockRow {
    pub number: i64,
    pub sealed_at: DateTime<Utc>,
    pub horizon: i64,
    pub newest_tx: i64,
    pub event_ids: Vec<i64>,
    pub last_event: i64,
    pub complete: bool,
    pub digests: Vec<u8>,
    pub sealed_total: i64,
    pub hash: Vec<u8>,
}

/// The newest block, without its lists.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_blocks, check_for_backend(Pg))]
pub struct HeadRow {
    pub number: i64,
    pub sealed_at: DateTime<Utc>,
    pub horizon: i64,
    pub last_event: i64,
    pub complete: bool,
    pub sealed_total: i64,
    pub hash: Vec<u8>,
}

/// The advisory lock that makes one sealer at a time, across replicas:
/// "healthcare-api audit seal".
const SEAL_LOCK: i64 = 0x6865_616c_7468_7365;

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Takes the sealer's lock for the current transaction, if no one holds it.
pub async fn try_lock(conn: &mut AsyncPgConnection) -> QueryResult<bool> {
    let row: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<BigInt, _>(SEAL_LOCK)
        .get_result(conn)
        .await?;
    Ok(row.locked)
}

/// The transaction's snapshot, as the sealer records it.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct Snapshot {
    /// Every transaction older than this has ended.
    #[diesel(sql_type = BigInt)]
    pub horizon: i64,
    /// The time now, after the snapshot was taken: later than every event
    /// the snapshot sees (the transaction's start, `now()`, may not be).
    #[diesel(sql_type = Timestamptz)]
    pub now: DateTime<Utc>,
}

pub async fn snapshot(conn: &mut AsyncPgConnection) -> QueryResult<Snapshot> {
    diesel::sql_query(
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon, clock_timestamp() AS now",
    )
    .get_result(conn)
    .await
}

pub async fn head(conn: &mut AsyncPgConnection) -> QueryResult<Option<HeadRow>> {
    audit_blocks::table
        .select(HeadRow::as_select())
        .order_by(audit_blocks::number.desc())
        .first(conn)
        .await
        .optional()
}

/// Up to `limit` of the committed events no block seals yet, from the
/// newest block's horizon on, in id order; with `after`, only those after
/// that id (the previous block's last, while a backlog lasts).
pub async fn unsealed(
    conn: &mut AsyncPgConnection,
    horizon: i64,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<SealedEventRow>> {
    match after {
        None => {
            diesel::sql_query(include_str!("seal/unsealed.sql"))
                .bind::<BigInt, _>(horizon)
                .bind::<BigInt, _>(limit)
                .load(conn)
                .await
        }
        Some(after) => {
            diesel::sql_query(include_str!("seal/unsealed_after.sql"))
                .bind::<BigInt, _>(horizon)
                .bind::<BigInt, _>(after)
                .bind::<BigInt, _>(limit)
                .load(conn)
                .await
        }
    }
}

pub async fn insert_block(conn: &mut AsyncPgConnection, block: &BlockRow) -> QueryResult<()> {
    diesel::insert_into(audit_blocks::table)
        .values(block.clone())
        .execute(conn)
        .await
        .map(drop)
}

/// Events waiting for a seal.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct Pending {
    #[diesel(sql_type = BigInt)]
    pub events: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub oldest: Option<DateTime<Utc>>,
}

pub async fn pending(conn: &mut AsyncPgConnection) -> QueryResult<Pending> {
    diesel::sql_query(include_str!("seal/pending.sql"))
        .get_result(conn)
        .await
}

/// Up to `limit` blocks after block `after`, in order.
pub async fn blocks_after(conn: &mut AsyncPgConnection, after: i64, limit: i64) -> QueryResult<Vec<BlockRow>> {
    audit_blocks::table
        .select(BlockRow::as_select())
        .filter(audit_blocks::number.gt(after))
        .order_by(audit_blocks::number.asc())
        .limit(limit)
        .load(conn)
        .await
}

pub async fn events_by_ids(conn: &mut AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<SealedEventRow>> {
    audit_events::table
        .select(SealedEventRow::as_select())
        .filter(audit_events::id.eq_any(ids))
        .load(conn)
        .await
}

pub async fn has_block_with_hash(conn: &mut AsyncPgConnection, hash: &[u8]) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        audit_blocks::table.filter(audit_blocks::hash.eq(hash)),
    ))
    .get_result(conn)
    .await
}

/// An event that no block lists.
#[derive(Debug, Clone, QueryableByName)]
pub struct Outside {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub tx: i64,
}

pub async fn outside_blocks(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Outside>> {
    diesel::sql_query(include_str!("seal/outside.sql")).load(conn).await
}

/// An event that two blocks list.
#[derive(Debug, Clone, QueryableByName)]
pub struct Resealed {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub first_block: i64,
    #[diesel(sql_type = BigInt)]
    pub again_in: i64,
}

pub async fn resealed(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Resealed>> {
    diesel::sql_query(include_str!("seal/resealed.sql")).load(conn).await
}
