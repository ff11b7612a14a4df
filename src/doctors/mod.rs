//! Doctors: a shared directory. Changes are audited in their transaction.

pub mod access;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection as _;
use uuid::Uuid;

use crate::{
    audit::{self, Action, Assigned, EntityType, Event},
    db::{
        Db,
        doctors::{self as store, DoctorChanges, DoctorRow, LICENSE_NUMBER_KEY, NewDoctorRow},
        mappings as mapping_store,
    },
    error::{AppError, AppResult, OnConstraint as _},
    idempotency::{self, Claim, IdempotencyKey, Keyed},
    input::{self, Change, SearchTerm},
    paging::{Cursor, Limit, Order, Page},
    viewer::Viewer,
};

/// A doctor of the shared directory.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Doctor {
    pub id: Uuid,
    pub name: String,
    pub specialization: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Unique across doctors when present.
    pub license_number: Option<String>,
    /// The id of the user who added the doctor.
    pub created_by: Uuid,
    #[serde(serialize_with = "crate::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl From<DoctorRow> for Doctor {
    fn from(r: DoctorRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            specialization: r.specialization,
            email: r.email,
            phone: r.phone,
            license_number: r.license_number,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A new doctor, as both transports receive it (the REST body as it is).
#[derive(Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = CreateDoctorBody)]
pub struct CreateDoctor {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(min_length = 1, max_length = 200)]
    pub specialization: String,
    /// Blank is no value.
    #[schema(max_length = 254)]
    pub email: Option<String>,
    /// Digits, spaces and `+-()`; blank is no value.
    #[schema(max_length = 32)]
    pub phone: Option<String>,
    /// Letters, digits, spaces and `-/._`; blank is no value.
    #[schema(max_length = 64)]
    pub license_number: Option<String>,
}

/// Changes to a doctor: a field left out stays as it is, `null` clears a
/// nullable field; `name` and `specialization` cannot be cleared.
#[derive(Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = UpdateDoctorBody)]
pub struct UpdateDoctor {
    #[serde(default)]
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    pub name: Change<String>,
    #[serde(default)]
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    pub specialization: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 254)]
    pub email: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 32)]
    pub phone: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 64)]
    pub license_number: Change<String>,
}

/// A licence number: at most 64 ASCII letters, digits, spaces and `-/._`;
/// only spaces is no value. Stored trimmed.
pub const LICENSE_NUMBER_PATTERN: &str = r"^[A-Za-z0-9 ./_-]*$";

fn license_number(raw: &str) -> AppResult<Option<String>> {
    let ok = raw.chars().count() <= 64 && raw.chars().all(|c| c.is_ascii_alphanumeric() || " -/._".contains(c));
    if ok {
        let s = raw.trim();
        Ok((!s.is_empty()).then(|| s.to_owned()))
    } else {
        Err(AppError::bad_input(
            "licenseNumber",
            "must be 1 to 64 letters, digits, spaces and -/._",
        ))
    }
}

fn email(raw: &str) -> AppResult<Option<String>> {
    input::optional_email("email", raw)
}

fn phone(raw: &str) -> AppResult<Option<String>> {
    input::optional_phone("phone", raw)
}

const LICENSE_TAKEN: AppError = AppError::Conflict {
    field: Some("licenseNumber"),
    message: "another doctor has this licence number",
};

/// Creates a doctor, or with an idempotency key already used for this same
/// input, answers with the doctor that key made.
pub async fn create(db: &Db, viewer: &Viewer, input: CreateDoctor, key: Option<&IdempotencyKey>) -> AppResult<Doctor> {
    let keyed = key.map(|key| Keyed::new(key, "createDoctor", &input));
    let new = NewDoctorRow {
        name: input::label("name", &input.name)?,
        specialization: input::label("specialization", &input.specialization)?,
        email: input::optional(input.email, email)?,
        phone: input::optional(input.phone, phone)?,
        license_number: input::optional(input.license_number, license_number)?,
        created_by: viewer.user_id,
    };
    let mut conn = db.conn().await?;
    conn.transaction(async |tx| {
        if let Some(keyed) = &keyed
            && let Claim::Made(id) = idempotency::claim(tx, viewer, keyed).await?
        {
            return Ok(store::find(tx, id)
                .await?
                .ok_or_else(idempotency::made_and_gone)?
                .into());
        }
        let row = store::insert(tx, new)
            .await
            .on_unique(LICENSE_NUMBER_KEY, LICENSE_TAKEN)?;
        audit::record(
            tx,
            &[Event::by(viewer, Action::DoctorCreated, EntityType::Doctor, row.id)],
        )
        .await?;
        if let Some(keyed) = &keyed {
            idempotency::settle(tx, viewer, keyed, row.id).await?;
        }
        Ok(row.into())
    })
    .await
}

pub async fn get(db: &Db, id: Uuid) -> AppResult<Option<Doctor>> {
    db.run(async |conn| Ok(store::find(conn, id).await?.map(Doctor::from)))
        .await
}

pub async fn update(db: &Db, viewer: &Viewer, id: Uuid, input: UpdateDoctor) -> AppResult<Doctor> {
    let changes = DoctorChanges {
        name: input.name.try_map(|s| input::label("name", &s))?.required("name")?,
        specialization: input
            .specialization
            .try_map(|s| input::label("specialization", &s))?
            .required("specialization")?,
        email: input.email.try_map(|s| email(&s))?.flatten().into_column(),
        phone: input.phone.try_map(|s| phone(&s))?.flatten().into_column(),
        license_number: input
            .license_number
            .try_map(|s| license_number(&s))?
            .flatten()
            .into_column(),
        updated_at: Utc::now(),
    };
    let mut conn = db.conn().await?;
    conn.transaction(async |tx| {
        let doctor = store::lock(tx, id).await?.ok_or(AppError::NotFound)?;
        access::ensure_can_edit(viewer, doctor.created_by)?;
        let row = store::update(tx, id, changes)
            .await
            .on_unique(LICENSE_NUMBER_KEY, LICENSE_TAKEN)?;
        audit::record(tx, &[Event::by(viewer, Action::DoctorUpdated, EntityType::Doctor, id)]).await?;
        Ok(row.into())
    })
    .await
}

/// Deletes the doctor and all its assignments (each audited), in one
/// transaction; some of those assignments may be of patients the viewer
/// cannot see, which is why only the creator or an admin may do it.
pub async fn delete(db: &Db, viewer: &Viewer, id: Uuid) -> AppResult<Uuid> {
    let mut conn = db.conn().await?;
    conn.transaction(async |tx| {
        let doctor = store::lock(tx, id).await?.ok_or(AppError::NotFound)?;
        access::ensure_can_edit(viewer, doctor.created_by)?;
        let removed = mapping_store::delete_of_doctor(tx, id).await?;
        store::delete(tx, id).await?;
        let deleted = Event::by(viewer, Action::DoctorDeleted, EntityType::Doctor, id);
        audit::record(
            tx,
            &audit::with_removed_mappings(viewer, removed.iter().map(Assigned::from), deleted),
        )
        .await?;
        Ok(id)
    })
    .await
}

#[derive(Debug, Clone)]
pub struct DoctorQuery {
    pub search: Option<SearchTerm>,
    pub specialization: Option<String>,
    pub order: Order,
}

impl DoctorQuery {
    /// The specialization filter: an exact, case-insensitive match.
    pub fn specialization(raw: Option<&str>) -> AppResult<Option<String>> {
        raw.filter(|s| !s.trim().is_empty())
            .map(|s| input::label("specialization", s))
            .transpose()
    }
}

pub async fn list(db: &Db, query: &DoctorQuery, limit: Limit, after: Option<Cursor>) -> AppResult<Page<Doctor>> {
    let pattern = query.search.as_ref().map(SearchTerm::pattern);
    db.run(async |conn| {
        let rows = store::list_page(
            conn,
            pattern.as_deref(),
            query.specialization.as_deref(),
            query.order,
            after.as_ref(),
            limit.get() + 1,
        )
        .await?;
        let field = query.order.field;
        let page = Page::from_rows(rows, limit, after.is_some(), |r| {
            Cursor::of(field, &r.name, r.created_at, r.id)
        });
        Ok(page.map(Doctor::from))
    })
    .await
}

pub async fn count(db: &Db, query: &DoctorQuery) -> AppResult<i64> {
    let pattern = query.search.as_ref().map(SearchTerm::pattern);
    db.run(async |conn| Ok(store::count(conn, pattern.as_deref(), query.specialization.as_deref()).await?))
        .await
}

pub async fn by_ids(db: &Db, ids: &[Uuid]) -> AppResult<HashMap<Uuid, Doctor>> {
    db.run(async |conn| {
        Ok(store::by_ids(conn, ids)
            .await?
            .into_iter()
            .map(|d| (d.id, d.into()))
            .collect())
    })
    .await
}

/// The doctors of each patient the viewer may see.
pub async fn of_patients(db: &Db, viewer: &Viewer, patient_ids: &[Uuid]) -> AppResult<HashMap<Uuid, Vec<Doctor>>> {
    db.run(async |conn| {
        let mut out: HashMap<Uuid, Vec<Doctor>> = HashMap::new();
        for (patient, doctor) in store::of_patients_visible(conn, viewer, patient_ids).await? {
            out.entry(patient).or_default().push(doctor.into());
        }
        Ok(out)
    })
    .await
}
