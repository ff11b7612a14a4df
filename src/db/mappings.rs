//! Rows and named queries of assignments. A mapping is visible exactly when
//! its patient is, so every read joins `patients` and filters by
//! `patients::access::visible_to`.

use chrono::{DateTime, Utc};
use diesel::{pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    KeysetTable, keyset_after, one,
    schema::{mappings, patients},
};
use crate::{
    paging::{Cursor, Direction},
    patients::access::visible_to,
    viewer::Viewer,
};

pub const PAIR_KEY: &str = "mappings_patient_id_doctor_id_key";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mappings, check_for_backend(Pg))]
pub struct MappingRow {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub doctor_id: Uuid,
    pub assigned_by: Uuid,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    patient_id: Uuid,
    doctor_id: Uuid,
    assigned_by: Uuid,
) -> QueryResult<MappingRow> {
    let query = diesel::insert_into(mappings::table)
        .values((
            mappings::patient_id.eq(patient_id),
            mappings::doctor_id.eq(doctor_id),
            mappings::assigned_by.eq(assigned_by),
        ))
        .returning(MappingRow::as_returning());
    query.load(conn).await.and_then(one)
}

pub async fn find_visible(conn: &mut AsyncPgConnection, viewer: &Viewer, id: Uuid) -> QueryResult<Option<MappingRow>> {
    mappings::table
        .inner_join(patients::table)
        .filter(mappings::id.eq(id))
        .filter(visible_to(viewer))
        .select(MappingRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Deletes the mapping if its patient is visible; returns what was deleted.
pub async fn delete_visible(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: Uuid,
) -> QueryResult<Option<MappingRow>> {
    let visible_patients = patients::table.filter(visible_to(viewer)).select(patients::id);
    let query = diesel::delete(
        mappings::table
            .filter(mappings::id.eq(id))
            .filter(mappings::patient_id.eq_any(visible_patients)),
    )
    .returning(MappingRow::as_returning());
    query.load(conn).await.and_then(one).optional()
}

/// Deletes a patient's assignments (the caller has checked the patient).
pub async fn delete_of_patient(conn: &mut AsyncPgConnection, patient_id: Uuid) -> QueryResult<Vec<MappingRow>> {
    diesel::delete(mappings::table.filter(mappings::patient_id.eq(patient_id)))
        .returning(MappingRow::as_returning())
        .get_results(conn)
        .await
}

/// Deletes a doctor's assignments (the caller has checked the doctor).
pub async fn delete_of_doctor(conn: &mut AsyncPgConnection, doctor_id: Uuid) -> QueryResult<Vec<MappingRow>> {
    diesel::delete(mappings::table.filter(mappings::doctor_id.eq(doctor_id)))
        .returning(MappingRow::as_returning())
        .get_results(conn)
        .await
}

type Listed = diesel::dsl::IntoBoxed<
    'static,
    diesel::dsl::Select<
        diesel::dsl::InnerJoin<mappings::table, patients::table>,
        diesel::dsl::AsSelect<MappingRow, Pg>,
    >,
    Pg,
>;

fn listed(viewer: &Viewer, patient_id: Option<Uuid>, doctor_id: Option<Uuid>) -> Listed {
    let mut query = mappings::table
        .inner_join(patients::table)
        .select(MappingRow::as_select())
        .into_boxed()
        .filter(visible_to(viewer));
    if let Some(patient) = patient_id {
        query = query.filter(mappings::patient_id.eq(patient));
    }
    if let Some(doctor) = doctor_id {
        query = query.filter(mappings::doctor_id.eq(doctor));
    }
    query
}

/// Newest first, after `cursor`.
pub async fn list_page(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    patient_id: Option<Uuid>,
    doctor_id: Option<Uuid>,
    after: Option<&Cursor>,
    limit: i64,
) -> QueryResult<Vec<MappingRow>> {
    let mut query = listed(viewer, patient_id, doctor_id);
    if let Some(cond) = after.and_then(|c| keyset_after(KeysetTable::Mappings, c, Direction::Desc)) {
        query = query.filter(cond);
    }
    query
        .order_by((mappings::created_at.desc(), mappings::id.desc()))
        .limit(limit)
        .load(conn)
        .await
}

pub async fn count(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    patient_id: Option<Uuid>,
    doctor_id: Option<Uuid>,
) -> QueryResult<i64> {
    listed(viewer, patient_id, doctor_id).count().get_result(conn).await
}

/// The visible mappings among `ids`.
pub async fn by_ids_visible(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    ids: &[Uuid],
) -> QueryResult<Vec<MappingRow>> {
    mappings::table
        .inner_join(patients::table)
        .filter(mappings::id.eq_any(ids))
        .filter(visible_to(viewer))
        .select(MappingRow::as_select())
        .load(conn)
        .await
}

/// The visible mappings of each of the patients.
pub async fn of_patients_visible(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    patient_ids: &[Uuid],
) -> QueryResult<Vec<MappingRow>> {
    mappings::table
        .inner_join(patients::table)
        .filter(mappings::patient_id.eq_any(patient_ids))
        .filter(visible_to(viewer))
        .order_by((mappings::created_at.asc(), mappings::id.asc()))
        .select(MappingRow::as_select())
        .load(conn)
        .await
}

/// The visible mappings of each of the doctors.
pub async fn of_doctors_visible(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    doctor_ids: &[Uuid],
) -> QueryResult<Vec<MappingRow>> {
    mappings::table
        .inner_join(patients::table)
        .filter(mappings::doctor_id.eq_any(doctor_ids))
        .filter(visible_to(viewer))
        .order_by((mappings::created_at.asc(), mappings::id.asc()))
        .select(MappingRow::as_select())
        .load(conn)
        .await
}
