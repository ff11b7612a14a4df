//! Assignments of doctors to patients. The viewer must be able to see the
//! patient; the doctor must exist; a pair is assigned at most once (the
//! database's unique constraint has the last word).

pub mod events;

use std::collections::HashMap;

use diesel_async::AsyncConnection as _;
use uuid::Uuid;

use crate::{
    audit::{self, Action, Assigned, Event},
    db::{
        Db, doctors as doctor_store,
        mappings::{self as store, MappingRow, PAIR_KEY},
        patients as patient_store,
    },
    error::{AppError, AppResult, OnConstraint as _},
    idempotency::{self, Claim, IdempotencyKey, Keyed},
    paging::{Cursor, Limit, Page},
    viewer::Viewer,
};

/// A doctor assigned to a patient. A (patient, doctor) pair is assigned at
/// most once.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Mapping {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub doctor_id: Uuid,
    /// The id of the user who made the assignment.
    pub assigned_by: Uuid,
    #[serde(serialize_with = "crate::time::serialize")]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<MappingRow> for Mapping {
    fn from(r: MappingRow) -> Self {
        Self {
            id: r.id,
            patient_id: r.patient_id,
            doctor_id: r.doctor_id,
            assigned_by: r.assigned_by,
            created_at: r.created_at,
        }
    }
}

use crate::doctors::Doctor;

/// Assigns a doctor to a patient, or with an idempotency key already used
/// for this same pair, answers with the assignment that key made.
pub async fn assign(
    db: &Db,
    viewer: &Viewer,
    patient_id: Uuid,
    doctor_id: Uuid,
    key: Option<&IdempotencyKey>,
) -> AppResult<Mapping> {
    let keyed = key.map(|key| Keyed::new(key, "assignDoctor", &(patient_id, doctor_id)));
    let mut conn = db.conn().await?;
    conn.transaction(async |tx| {
        if let Some(keyed) = &keyed
            && let Claim::Made(id) = idempotency::claim(tx, viewer, keyed).await?
        {
            let made = store::find_visible(tx, viewer, id).await?;
            return Ok(made.ok_or_else(idempotency::made_and_gone)?.into());
        }
        // Locked so that neither can be deleted before this commits.
        if !patient_store::lock_visible(tx, viewer, patient_id).await? {
            return Err(AppError::NotFound);
        }
        if !doctor_store::lock_shared(tx, doctor_id).await? {
            return Err(AppError::NotFound);
        }
        let row = store::insert(tx, patient_id, doctor_id, viewer.user_id)
            .await
            .on_unique(
                PAIR_KEY,
                AppError::Conflict {
                    field: None,
                    message: "this doctor is already assigned to this patient",
                },
            )?;
        audit::record(
            tx,
            &[Event::on_mapping(viewer, Action::MappingCreated, Assigned::from(&row))],
        )
        .await?;
        if let Some(keyed) = &keyed {
            idempotency::settle(tx, viewer, keyed, row.id).await?;
        }
        Ok(row.into())
    })
    .await
}

pub async fn remove(db: &Db, viewer: &Viewer, id: Uuid) -> AppResult<Mapping> {
    let mut conn = db.conn().await?;
    conn.transaction(async |tx| {
        let row = store::delete_visible(tx, viewer, id).await?.ok_or(AppError::NotFound)?;
        audit::record(
            tx,
            &[Event::on_mapping(viewer, Action::MappingDeleted, Assigned::from(&row))],
        )
        .await?;
        Ok(row.into())
    })
    .await
}

pub async fn get(db: &Db, viewer: &Viewer, id: Uuid) -> AppResult<Option<Mapping>> {
    db.run(async |conn| Ok(store::find_visible(conn, viewer, id).await?.map(Mapping::from)))
        .await
}

#[derive(Debug, Clone, Default)]
pub struct MappingQuery {
    pub patient_id: Option<Uuid>,
    pub doctor_id: Option<Uuid>,
}

/// Assignments whose patient the viewer may see, newest first.
pub async fn list(
    db: &Db,
    viewer: &Viewer,
    query: &MappingQuery,
    limit: Limit,
    after: Option<Cursor>,
) -> AppResult<Page<Mapping>> {
    db.run(async |conn| {
        let rows = store::list_page(
            conn,
            viewer,
            query.patient_id,
            query.doctor_id,
            after.as_ref(),
            limit.get() + 1,
        )
        .await?;
        let page = Page::from_rows(rows, limit, after.is_some(), |m| Cursor::CreatedAt(m.created_at, m.id));
        Ok(page.map(Mapping::from))
    })
    .await
}

pub async fn count(db: &Db, viewer: &Viewer, query: &MappingQuery) -> AppResult<i64> {
    db.run(async |conn| Ok(store::count(conn, viewer, query.patient_id, query.doctor_id).await?))
        .await
}

pub async fn by_ids(db: &Db, viewer: &Viewer, ids: &[Uuid]) -> AppResult<HashMap<Uuid, Mapping>> {
    db.run(async |conn| {
        Ok(store::by_ids_visible(conn, viewer, ids)
            .await?
            .into_iter()
            .map(|m| (m.id, m.into()))
            .collect())
    })
    .await
}

fn grouped(rows: Vec<MappingRow>, key: impl Fn(&MappingRow) -> Uuid) -> HashMap<Uuid, Vec<Mapping>> {
    let mut out: HashMap<Uuid, Vec<Mapping>> = HashMap::new();
    for row in rows {
        out.entry(key(&row)).or_default().push(row.into());
    }
    out
}

pub async fn of_patients(db: &Db, viewer: &Viewer, patient_ids: &[Uuid]) -> AppResult<HashMap<Uuid, Vec<Mapping>>> {
    db.run(async |conn| {
        let rows = store::of_patients_visible(conn, viewer, patient_ids).await?;
        Ok(grouped(rows, |m| m.patient_id))
    })
    .await
}

pub async fn of_doctors(db: &Db, viewer: &Viewer, doctor_ids: &[Uuid]) -> AppResult<HashMap<Uuid, Vec<Mapping>>> {
    db.run(async |conn| {
        let rows = store::of_doctors_visible(conn, viewer, doctor_ids).await?;
        Ok(grouped(rows, |m| m.doctor_id))
    })
    .await
}

/// The doctors assigned to one patient; `NOT_FOUND` if the viewer may not
/// see the patient.
pub async fn doctors_of_patient(db: &Db, viewer: &Viewer, patient_id: Uuid) -> AppResult<Vec<Doctor>> {
    db.run(async |conn| {
        if patient_store::by_ids_visible(conn, viewer, &[patient_id])
            .await?
            .is_empty()
        {
            return Err(AppError::NotFound);
        }
        let rows = doctor_store::of_patients_visible(conn, viewer, &[patient_id]).await?;
        Ok(rows.into_iter().map(|(_, doctor)| doctor.into()).collect())
    })
    .await
}
