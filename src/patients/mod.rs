//! Patients: private records, visible to and changeable by their creator and
//! admins only. Each change and each single-record read leaves an audit event
//! in the same transaction.

pub mod access;

use std::{collections::HashMap, fmt};

use chrono::{DateTime, NaiveDate, Utc};
use diesel_async::AsyncConnection as _;
use uuid::Uuid;

use crate::{
    audit::{self, Action, Assigned, EntityType, Event},
    db::{
        Db, mappings as mapping_store,
        patients::{self as store, NewPatientRow, PatientChanges, PatientRow},
    },
    error::{AppError, AppResult},
    idempotency::{self, Claim, IdempotencyKey, Keyed},
    input::{self, Change, PersonName, SearchTerm, TextLimit},
    paging::{Cursor, Limit, Order, Page},
    viewer::Viewer,
};

pub const ADDRESS: TextLimit = TextLimit::new(1000, "must be at most 1,000 characters");
pub const MEDICAL_HISTORY: TextLimit = TextLimit::new(20_000, "must be at most 20,000 characters");

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Gender {
    Female,
    Male,
    Other,
    Unknown,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Female => "FEMALE",
            Self::Male => "MALE",
            Self::Other => "OTHER",
            Self::Unknown => "UNKNOWN",
        }
    }

    fn from_db(s: &str) -> Self {
        match s {
            "FEMALE" => Self::Female,
            "MALE" => Self::Male,
            "OTHER" => Self::Other,
            _ => Self::Unknown,
        }
    }
}

/// A patient record. Visible only to the user who created it and to admins.
#[derive(Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = Option<String>, format = Date)]
    pub date_of_birth: Option<NaiveDate>,
    pub gender: Gender,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    /// Free-text clinical history and notes.
    pub medical_history: Option<String>,
    /// The id of the user who created the record.
    pub created_by: Uuid,
    #[serde(serialize_with = "crate::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for Patient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Patient").field("id", &self.id).finish_non_exhaustive()
    }
}

impl From<PatientRow> for Patient {
    fn from(r: PatientRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            date_of_birth: r.date_of_birth,
            gender: Gender::from_db(&r.gender),
            email: r.email,
            phone: r.phone,
            address: r.address,
            medical_history: r.medical_history,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A new patient, as both transports receive it (the REST body as it is).
#[derive(Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = CreatePatientBody)]
pub struct CreatePatient {
    /// At most 200 characters, not all white space, no control characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// `YYYY-MM-DD`, not in the future, not before 1850.
    #[schema(format = Date)]
    pub date_of_birth: Option<String>,
    /// `UNKNOWN` when left out or null.
    pub gender: Option<Gender>,
    /// Blank is no value.
    #[schema(max_length = 254)]
    pub email: Option<String>,
    /// Digits, spaces and `+-()`; blank is no value.
    #[schema(max_length = 32)]
    pub phone: Option<String>,
    #[schema(max_length = 1000)]
    pub address: Option<String>,
    #[schema(max_length = 20000)]
    pub medical_history: Option<String>,
}

/// Changes to a patient: a field left out stays as it is, `null` clears a
/// nullable field (null for `name` or `gender` is refused).
#[derive(Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = UpdatePatientBody)]
pub struct UpdatePatient {
    #[serde(default)]
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    pub name: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub date_of_birth: Change<String>,
    #[serde(default)]
    #[schema(value_type = Gender)]
    pub gender: Change<Gender>,
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 254)]
    pub email: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 32)]
    pub phone: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub address: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 20000)]
    pub medical_history: Change<String>,
}

/// A date of birth as sent: `YYYY-MM-DD`, not in the future, not before 1850.
fn date_of_birth(raw: &str) -> AppResult<NaiveDate> {
    input::birth_date("dateOfBirth", input::date("dateOfBirth", raw)?)
}

impl CreatePatient {
    fn parse(self, viewer: &Viewer) -> AppResult<NewPatientRow> {
        Ok(NewPatientRow {
            name: PersonName::parse("name", &self.name)?.into_inner(),
            date_of_birth: self.date_of_birth.as_deref().map(date_of_birth).transpose()?,
            gender: self.gender.unwrap_or(Gender::Unknown).as_str(),
            email: input::optional(self.email, |s| input::optional_email("email", s))?,
            phone: input::optional(self.phone, |s| input::optional_phone("phone", s))?,
            address: input::optional(self.address, |s| input::optional_text("address", s, ADDRESS))?,
            medical_history: input::optional(self.medical_history, |s| {
                input::optional_text("medicalHistory", s, MEDICAL_HISTORY)
            })?,
            created_by: viewer.user_id,
        })
    }
}

impl UpdatePatient {
    /// Only here is it known that a name and a gender cannot be cleared.
    fn parse(self) -> AppResult<PatientChanges> {
        Ok(PatientChanges {
            name: self
                .name
                .try_map(|raw| PersonName::parse("name", &raw).map(PersonName::into_inner))?
                .required("name")?,
            date_of_birth: self.date_of_birth.try_map(|d| date_of_birth(&d))?.into_column(),
            gender: self.gender.required("gender")?.map(Gender::as_str),
            email: self
                .email
                .try_map(|s| input::optional_email("email", &s))?
                .flatten()
                .into_column(),
            phone: self
                .phone
                .try_map(|s| input::optional_phone("phone", &s))?
                .flatten()
                .into_column(),
            address: self
                .address
                .try_map(|s| input::optional_text("address", &s, ADDRESS))?
                .flatten()
                .into_column(),
            medical_history: self
                .medical_history
                .try_map(|s| input::optional_text("medicalHistory", &s, MEDICAL_HISTORY))?
                .flatten()
                .into_column(),
            updated_at: Utc::now(),
        })
    }
}

/// Creates the patient and its `PATIENT_CREATED` event in one statement.
/// Creates a patient, or with an idempotency key already used for this same
/// input, answers with the patient that key made (a read, audited as one).
pub async fn create(
    db: &Db,
    viewer: &Viewer,
    input: CreatePatient,
    key: Option<&IdempotencyKey>,
) -> AppResult<Patient> {
    let keyed = key.map(|key| Keyed::new(key, "createPatient", &input));
    let new = input.parse(viewer)?;
    let Some(keyed) = keyed else {
        return db
            .run(async |conn| Ok(store::insert_audited(conn, viewer, new).await?.into()))
            .await;
    };
    let mut conn = db.conn().await?;
    conn.transaction(async |tx| {
        let row = match idempotency::claim(tx, viewer, &keyed).await? {
            Claim::Made(id) => store::read_audited(tx, viewer, id)
                .await?
                .ok_or_else(idempotency::made_and_gone)?,
            Claim::Fresh => {
                let row = store::insert_audited(tx, viewer, new).await?;
                idempotency::settle(tx, viewer, &keyed, row.id).await?;
                row
            }
        };
        Ok(row.into())
    })
    .await
}

/// The patient, if the viewer may see it; the read and its `PATIENT_READ`
/// event are one statement.
pub async fn get(db: &Db, viewer: &Viewer, id: Uuid) -> AppResult<Option<Patient>> {
    db.run(async |conn| Ok(store::read_audited(conn, viewer, id).await?.map(Patient::from)))
        .await
}

pub async fn update(db: &Db, viewer: &Viewer, id: Uuid, input: UpdatePatient) -> AppResult<Patient> {
    let changes = input.parse()?;
    let mut conn = db.conn().await?;
    conn.transaction(async |tx| {
        let row = store::update_visible(tx, viewer, id, changes)
            .await?
            .ok_or(AppError::NotFound)?;
        audit::record(
            tx,
            &[Event::by(viewer, Action::PatientUpdated, EntityType::Patient, id)],
        )
        .await?;
        Ok(row.into())
    })
    .await
}

/// Deletes the patient and its assignments (each audited) in one transaction.
pub async fn delete(db: &Db, viewer: &Viewer, id: Uuid) -> AppResult<Uuid> {
    let mut conn = db.conn().await?;
    conn.transaction(async |tx| {
        if !store::lock_visible(tx, viewer, id).await? {
            return Err(AppError::NotFound);
        }
        let removed = mapping_store::delete_of_patient(tx, id).await?;
        store::delete_visible(tx, viewer, id).await?.ok_or(AppError::NotFound)?;
        let deleted = Event::by(viewer, Action::PatientDeleted, EntityType::Patient, id);
        audit::record(
            tx,
            &audit::with_removed_mappings(viewer, removed.iter().map(Assigned::from), deleted),
        )
        .await?;
        Ok(id)
    })
    .await
}

/// A page of the viewer's patients (everyone's for admins).
#[derive(Debug, Clone)]
pub struct PatientQuery {
    pub search: Option<SearchTerm>,
    pub order: Order,
}

pub async fn list(
    db: &Db,
    viewer: &Viewer,
    query: &PatientQuery,
    limit: Limit,
    after: Option<Cursor>,
) -> AppResult<Page<Patient>> {
    let pattern = query.search.as_ref().map(SearchTerm::pattern);
    db.run(async |conn| {
        let rows = store::list_page(
            conn,
            viewer,
            pattern.as_deref(),
            query.order,
            after.as_ref(),
            limit.get() + 1,
        )
        .await?;
        let field = query.order.field;
        Ok(Page::from_rows(rows, limit, after.is_some(), |r| {
            Cursor::of(field, &r.name, r.created_at, r.id)
        })
        .map(Patient::from))
    })
    .await
}

pub async fn count(db: &Db, viewer: &Viewer, query: &PatientQuery) -> AppResult<i64> {
    let pattern = query.search.as_ref().map(SearchTerm::pattern);
    db.run(async |conn| Ok(store::count(conn, viewer, pattern.as_deref()).await?))
        .await
}

/// The visible patients among `ids` (for loaders; not audited as reads of
/// single records).
pub async fn by_ids(db: &Db, viewer: &Viewer, ids: &[Uuid]) -> AppResult<HashMap<Uuid, Patient>> {
    db.run(async |conn| {
        let rows = store::by_ids_visible(conn, viewer, ids).await?;
        Ok(rows.into_iter().map(|r| (r.id, Patient::from(r))).collect())
    })
    .await
}

/// The visible patients of each doctor.
pub async fn of_doctors(db: &Db, viewer: &Viewer, doctor_ids: &[Uuid]) -> AppResult<HashMap<Uuid, Vec<Patient>>> {
    db.run(async |conn| {
        let rows = store::of_doctors_visible(conn, viewer, doctor_ids).await?;
        let mut out: HashMap<Uuid, Vec<Patient>> = HashMap::new();
        for (doctor, row) in rows {
            out.entry(doctor).or_default().push(row.into());
        }
        Ok(out)
    })
    .await
}
