//! Rows and named queries of the doctors directory.

use chrono::{DateTime, Utc};
use diesel::{pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    KeysetTable, keyset_after, one,
    schema::{doctors, mappings, patients},
};
use crate::{
    paging::{Cursor, Direction, Order, SortField},
    patients::access::visible_to,
    viewer::Viewer,
};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = doctors, check_for_backend(Pg))]
pub struct DoctorRow {
    pub id: Uuid,
    pub name: String,
    pub specialization: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub license_number: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = doctors, treat_none_as_default_value = false)]
/// `None` is NULL, not DEFAULT, so that the statement can stay prepared.
pub struct NewDoctorRow {
    pub name: String,
    pub specialization: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub license_number: Option<String>,
    pub created_by: Uuid,
}

#[derive(AsChangeset)]
#[diesel(table_name = doctors)]
pub struct DoctorChanges {
    pub name: Option<String>,
    pub specialization: Option<String>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub license_number: Option<Option<String>>,
    pub updated_at: DateTime<Utc>,
}

pub const LICENSE_NUMBER_KEY: &str = "doctors_license_number_key";

pub async fn insert(conn: &mut AsyncPgConnection, new: NewDoctorRow) -> QueryResult<DoctorRow> {
    let query = diesel::insert_into(doctors::table)
        .values(new)
        .returning(DoctorRow::as_returning());
    query.load(conn).await.and_then(one)
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<DoctorRow>> {
    doctors::table
        .find(id)
        .select(DoctorRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The doctor, locked for the rest of the transaction.
pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<DoctorRow>> {
    doctors::table
        .find(id)
        .select(DoctorRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Whether the doctor exists, locking it against a concurrent delete.
pub async fn lock_shared(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    doctors::table
        .find(id)
        .select(doctors::id)
        .for_share()
        .first::<Uuid>(conn)
        .await
        .optional()
        .map(|d| d.is_some())
}

pub async fn update(conn: &mut AsyncPgConnection, id: Uuid, changes: DoctorChanges) -> QueryResult<DoctorRow> {
    let query = diesel::update(doctors::table.find(id))
        .set(changes)
        .returning(DoctorRow::as_returning());
    query.load(conn).await.and_then(one)
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<usize> {
    diesel::delete(doctors::table.find(id)).execute(conn).await
}

fn listed(pattern: Option<&str>, specialization: Option<&str>) -> doctors::BoxedQuery<'static, Pg> {
    let mut query = doctors::table.into_boxed();
    if let Some(pattern) = pattern {
        query = query.filter(
            doctors::name
                .ilike(pattern.to_owned())
                .or(doctors::specialization.ilike(pattern.to_owned())),
        );
    }
    if let Some(specialization) = specialization {
        query = query.filter(lower(doctors::specialization).eq(specialization.to_lowercase()));
    }
    query
}

pub async fn list_page(
    conn: &mut AsyncPgConnection,
    pattern: Option<&str>,
    specialization: Option<&str>,
    order: Order,
    after: Option<&Cursor>,
    limit: i64,
) -> QueryResult<Vec<DoctorRow>> {
    let mut query = listed(pattern, specialization);
    if let Some(cond) = after.and_then(|c| keyset_after(KeysetTable::Doctors, c, order.direction)) {
        query = query.filter(cond);
    }
    query = match (order.field, order.direction) {
        (SortField::Name, Direction::Asc) => query.order_by((doctors::name.asc(), doctors::id.asc())),
        (SortField::Name, Direction::Desc) => query.order_by((doctors::name.desc(), doctors::id.desc())),
        (SortField::CreatedAt, Direction::Asc) => query.order_by((doctors::created_at.asc(), doctors::id.asc())),
        (SortField::CreatedAt, Direction::Desc) => query.order_by((doctors::created_at.desc(), doctors::id.desc())),
    };
    query.select(DoctorRow::as_select()).limit(limit).load(conn).await
}

pub async fn count(
    conn: &mut AsyncPgConnection,
    pattern: Option<&str>,
    specialization: Option<&str>,
) -> QueryResult<i64> {
    listed(pattern, specialization).count().get_result(conn).await
}

pub async fn by_ids(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<DoctorRow>> {
    doctors::table
        .filter(doctors::id.eq_any(ids))
        .select(DoctorRow::as_select())
        .load(conn)
        .await
}

/// The doctors of each of the patients the viewer may see, by assignment time.
pub async fn of_patients_visible(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    patient_ids: &[Uuid],
) -> QueryResult<Vec<(Uuid, DoctorRow)>> {
    mappings::table
        .inner_join(doctors::table)
        .inner_join(patients::table)
        .filter(mappings::patient_id.eq_any(patient_ids))
        .filter(visible_to(viewer))
        .order_by((mappings::created_at.asc(), mappings::id.asc()))
        .select((mappings::patient_id, DoctorRow::as_select()))
        .load(conn)
        .await
}
