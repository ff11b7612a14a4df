//! Rows and named queries of the audit trail (insert and read only: the table
//! refuses updates and deletes).

use chrono::{DateTime, Utc};
use diesel::{pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::audit_events;
use crate::{patients::access, viewer::Viewer};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(Pg))]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub entity_ids: Vec<Uuid>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
/// `None` is NULL, not DEFAULT, so that the statement can stay prepared.
pub struct NewAuditRow<'a> {
    pub actor_id: Option<Uuid>,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: Option<Uuid>,
    pub request_id: Option<&'a str>,
    pub entity_ids: Vec<Uuid>,
}

pub async fn insert(conn: &mut AsyncPgConnection, rows: &[NewAuditRow<'_>]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    diesel::insert_into(audit_events::table)
        .values(rows)
        .execute(conn)
        .await
        .map(drop)
}

/// What a list of events is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct AuditFilterRow {
    pub actor_id: Option<Uuid>,
    pub entity_id: Option<Uuid>,
    pub action: Option<&'static str>,
}

fn filtered(filter: &AuditFilterRow) -> audit_events::BoxedQuery<'static, Pg> {
    let mut query = audit_events::table.into_boxed();
    if let Some(actor) = filter.actor_id {
        query = query.filter(audit_events::actor_id.eq(actor));
    }
    if let Some(entity) = filter.entity_id {
        query = query.filter(audit_events::entity_ids.contains(vec![entity]));
    }
    if let Some(action) = filter.action {
        query = query.filter(audit_events::action.eq(action));
    }
    query
}

/// Newest first, after the event with id `before` when given.
pub async fn list_page(
    conn: &mut AsyncPgConnection,
    filter: &AuditFilterRow,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = filtered(filter);
    if let Some(before) = before {
        query = query.filter(audit_events::id.lt(before));
    }
    query
        .select(AuditRow::as_select())
        .order_by(audit_events::id.desc())
        .limit(limit)
        .load(conn)
        .await
}

pub async fn count(conn: &mut AsyncPgConnection, filter: &AuditFilterRow) -> QueryResult<i64> {
    filtered(filter).count().get_result(conn).await
}

/// An event of a patient's access log.
#[derive(Debug, QueryableByName)]
pub struct LogRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub patient_id: Uuid,
    #[diesel(embed)]
    pub event: AuditRow,
}

/// Up to `limit` events of each patient's access log, newest first, after
/// the event with id `before` when given, for those of `patients` the viewer
/// may see.
pub async fn access_logs(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    patients: &[Uuid],
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<LogRow>> {
    use diesel::sql_types::{Array, BigInt, Nullable};
    diesel::sql_query(include_str!("access_log.sql"))
        .bind::<Array<diesel::sql_types::Uuid>, _>(patients)
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(access::sees_only(viewer))
        .bind::<Nullable<BigInt>, _>(before)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await
}

/// How many events concern a patient, by patient.
#[derive(Debug, QueryableByName)]
pub struct LogCount {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub patient_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub events: i64,
}

/// The size of each access log, for those of `patients` the viewer may see.
pub async fn access_log_counts(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    patients: &[Uuid],
) -> QueryResult<Vec<LogCount>> {
    use diesel::sql_types::{Array, Nullable};
    diesel::sql_query(include_str!("access_log_counts.sql"))
        .bind::<Array<diesel::sql_types::Uuid>, _>(patients)
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(access::sees_only(viewer))
        .load(conn)
        .await
}
