//! Idempotency keys: claiming one for a write, and finding how it was used.

use diesel::{
    prelude::*,
    sql_types::{Bytea, Text, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::idempotency_keys;

/// How a key was first used.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys, check_for_backend(diesel::pg::Pg))]
pub struct KeyRow {
    pub operation: String,
    pub fingerprint: Vec<u8>,
    pub entity_id: Option<Uuid>,
}

/// Claims `key` for a write in the caller's transaction: true when the key
/// is new to this user (or was last used more than 24 hours ago), false when
/// it is in use. A request holding the same key but not yet committed is
/// waited for, so two copies of one request never both write. The user's
/// other keys that are over 24 hours old are forgotten on the way.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    key: &str,
    operation: &str,
    fingerprint: &[u8],
) -> QueryResult<bool> {
    diesel::sql_query(include_str!("idempotency/claim.sql"))
        .bind::<SqlUuid, _>(user_id)
        .bind::<Text, _>(key)
        .bind::<Text, _>(operation)
        .bind::<Bytea, _>(fingerprint)
        .execute(conn)
        .await
        .map(|claimed| claimed == 1)
}

pub async fn find(conn: &mut AsyncPgConnection, user_id: Uuid, key: &str) -> QueryResult<Option<KeyRow>> {
    idempotency_keys::table
        .find((user_id, key))
        .select(KeyRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Records the record that the claimed key's write made.
pub async fn settle(conn: &mut AsyncPgConnection, user_id: Uuid, key: &str, entity_id: Uuid) -> QueryResult<()> {
    diesel::update(idempotency_keys::table.find((user_id, key)))
        .set(idempotency_keys::entity_id.eq(entity_id))
        .execute(conn)
        .await
        .map(drop)
}
