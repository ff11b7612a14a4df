//! Rows and named queries of patients. Every read and write that can touch
//! someone else's patient filters by `patients::access::visible_to` in SQL.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::{
    pg::Pg,
    prelude::*,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    sql_types::{self, Nullable},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    KeysetTable, keyset_after, one,
    schema::{mappings, patients},
};
use crate::{
    audit::{Action, EntityType},
    paging::{Cursor, Direction, Order, SortField},
    patients::access::visible_to,
    viewer::Viewer,
};

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = patients, check_for_backend(Pg))]
pub struct PatientRow {
    pub id: Uuid,
    pub name: String,
    pub date_of_birth: Option<NaiveDate>,
    pub gender: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub medical_history: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Patient data never prints: only the id.
impl fmt::Debug for PatientRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatientRow")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// `None` is written as NULL, not DEFAULT: with DEFAULT the statement's text
/// depends on which fields are given, and diesel does not keep it prepared
/// (measured: the create lost a third of its throughput).
#[derive(Clone, Insertable)]
#[diesel(table_name = patients, treat_none_as_default_value = false)]
pub struct NewPatientRow {
    pub name: String,
    pub date_of_birth: Option<NaiveDate>,
    pub gender: &'static str,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub medical_history: Option<String>,
    pub created_by: Uuid,
}

/// A partial update: `None` leaves a column, `Some(None)` clears it.
#[derive(AsChangeset)]
#[diesel(table_name = patients)]
pub struct PatientChanges {
    pub name: Option<String>,
    pub date_of_birth: Option<Option<NaiveDate>>,
    pub gender: Option<&'static str>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub address: Option<Option<String>>,
    pub medical_history: Option<Option<String>>,
    pub updated_at: DateTime<Utc>,
}

/// Patient rows together with one audit event per row, in one statement:
/// `WITH p AS (<rows>), audit AS (INSERT INTO audit_events ... SELECT ...
/// FROM p) SELECT * FROM p`. One statement is one transaction, so a row is
/// never returned without its event, in a single round trip. `rows` is a
/// diesel query (its columns, their order and the row type come from
/// `PatientRow`); only the event is written out here.
#[derive(Debug, Clone, QueryId)]
pub struct Audited<Q> {
    rows: Q,
    actor: Uuid,
    action: &'static str,
    entity_type: &'static str,
    request_id: Option<String>,
}

impl<Q> Audited<Q> {
    fn new(rows: Q, viewer: &Viewer, action: Action) -> Self {
        Self {
            rows,
            actor: viewer.user_id,
            action: action.as_str(),
            entity_type: EntityType::Patient.as_str(),
            request_id: viewer.request_id.clone(),
        }
    }
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Audited<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH p AS (");
        self.rows.walk_ast(out.reborrow())?;
        out.push_sql(
            "), audit AS (INSERT INTO audit_events (actor_id, action, entity_type, entity_id, request_id, entity_ids) SELECT ",
        );
        out.push_bind_param::<sql_types::Uuid, _>(&self.actor)?;
        out.push_sql(", ");
        out.push_bind_param::<sql_types::Text, _>(&self.action)?;
        out.push_sql(", ");
        out.push_bind_param::<sql_types::Text, _>(&self.entity_type)?;
        out.push_sql(", p.id, ");
        out.push_bind_param::<Nullable<sql_types::Text>, _>(&self.request_id)?;
        out.push_sql(", ARRAY[p.id] FROM p) SELECT * FROM p");
        Ok(())
    }
}

impl<Q: Query> Query for Audited<Q> {
    type SqlType = Q::SqlType;
}

/// `patient(id)`: the row if the viewer may see it, and its `PATIENT_READ`
/// event only if so.
pub async fn read_audited(conn: &mut AsyncPgConnection, viewer: &Viewer, id: Uuid) -> QueryResult<Option<PatientRow>> {
    let rows = patients::table
        .filter(patients::id.eq(id))
        .filter(visible_to(viewer))
        .select(PatientRow::as_select());
    Audited::new(rows, viewer, Action::PatientRead)
        .load(conn)
        .await
        .and_then(one)
        .optional()
}

/// `createPatient`: the row and its `PATIENT_CREATED` event.
pub async fn insert_audited(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    new: NewPatientRow,
) -> QueryResult<PatientRow> {
    let rows = diesel::insert_into(patients::table)
        .values(new)
        .returning(PatientRow::as_returning());
    Audited::new(rows, viewer, Action::PatientCreated)
        .load(conn)
        .await
        .and_then(one)
}

/// Whether the viewer may see this patient, locking it against a concurrent
/// delete for the rest of the transaction.
pub async fn lock_visible(conn: &mut AsyncPgConnection, viewer: &Viewer, id: Uuid) -> QueryResult<bool> {
    patients::table
        .filter(patients::id.eq(id))
        .filter(visible_to(viewer))
        .select(patients::id)
        .for_share()
        .first::<Uuid>(conn)
        .await
        .optional()
        .map(|found| found.is_some())
}

pub async fn update_visible(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: Uuid,
    changes: PatientChanges,
) -> QueryResult<Option<PatientRow>> {
    let query = diesel::update(patients::table.filter(patients::id.eq(id)).filter(visible_to(viewer)))
        .set(changes)
        .returning(PatientRow::as_returning());
    query.load(conn).await.and_then(one).optional()
}

pub async fn delete_visible(conn: &mut AsyncPgConnection, viewer: &Viewer, id: Uuid) -> QueryResult<Option<Uuid>> {
    let query =
        diesel::delete(patients::table.filter(patients::id.eq(id)).filter(visible_to(viewer))).returning(patients::id);
    query.load(conn).await.and_then(one).optional()
}

fn listed(viewer: &Viewer, pattern: Option<&str>) -> patients::BoxedQuery<'static, Pg> {
    let mut query = patients::table.filter(visible_to(viewer)).into_boxed();
    if let Some(pattern) = pattern {
        query = query.filter(patients::name.ilike(pattern.to_owned()));
    }
    query
}

/// One page in `order`, after `cursor`; `limit` rows at most.
pub async fn list_page(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    pattern: Option<&str>,
    order: Order,
    after: Option<&Cursor>,
    limit: i64,
) -> QueryResult<Vec<PatientRow>> {
    let mut query = listed(viewer, pattern);
    if let Some(cond) = after.and_then(|c| keyset_after(KeysetTable::Patients, c, order.direction)) {
        query = query.filter(cond);
    }
    query = match (order.field, order.direction) {
        (SortField::Name, Direction::Asc) => query.order_by((patients::name.asc(), patients::id.asc())),
        (SortField::Name, Direction::Desc) => query.order_by((patients::name.desc(), patients::id.desc())),
        (SortField::CreatedAt, Direction::Asc) => query.order_by((patients::created_at.asc(), patients::id.asc())),
        (SortField::CreatedAt, Direction::Desc) => query.order_by((patients::created_at.desc(), patients::id.desc())),
    };
    query.select(PatientRow::as_select()).limit(limit).load(conn).await
}

pub async fn count(conn: &mut AsyncPgConnection, viewer: &Viewer, pattern: Option<&str>) -> QueryResult<i64> {
    listed(viewer, pattern).count().get_result(conn).await
}

/// The visible patients among `ids`.
pub async fn by_ids_visible(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    ids: &[Uuid],
) -> QueryResult<Vec<PatientRow>> {
    patients::table
        .filter(patients::id.eq_any(ids))
        .filter(visible_to(viewer))
        .select(PatientRow::as_select())
        .load(conn)
        .await
}

/// The visible patients of each of the doctors, by assignment time.
pub async fn of_doctors_visible(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    doctor_ids: &[Uuid],
) -> QueryResult<Vec<(Uuid, PatientRow)>> {
    mappings::table
        .inner_join(patients::table)
        .filter(mappings::doctor_id.eq_any(doctor_ids))
        .filter(visible_to(viewer))
        .order_by((mappings::created_at.asc(), mappings::id.asc()))
        .select((mappings::doctor_id, PatientRow::as_select()))
        .load(conn)
        .await
}
