//! The audit trail: `record` appends events inside the caller's transaction
//! (a change never lands without its event); `list` is for admins only;
//! `seal` makes the trail tamper-evident.

pub mod seal;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::{
    db::{
        Db,
        audit::{self as store, AuditFilterRow, AuditRow, NewAuditRow},
        mappings::MappingRow,
    },
    error::AppResult,
    paging::{Cursor, Limit, Page},
    viewer::Viewer,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Register,
    LoginSucceeded,
    LoginFailed,
    PatientCreated,
    PatientRead,
    PatientsRead,
    PatientUpdated,
    PatientDeleted,
    DoctorCreated,
    DoctorUpdated,
    DoctorDeleted,
    MappingCreated,
    MappingDeleted,
    PasswordChanged,
    MfaEnabled,
    MfaDisabled,
    SessionRevoked,
    UserDisabled,
    UserEnabled,
}

impl Action {
    pub const ALL: [Action; 19] = [
        Self::Register,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::PatientCreated,
        Self::PatientRead,
        Self::PatientsRead,
        Self::PatientUpdated,
        Self::PatientDeleted,
        Self::DoctorCreated,
        Self::DoctorUpdated,
        Self::DoctorDeleted,
        Self::MappingCreated,
        Self::MappingDeleted,
        Self::PasswordChanged,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::SessionRevoked,
        Self::UserDisabled,
        Self::UserEnabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "REGISTER",
            Self::LoginSucceeded => "LOGIN_SUCCEEDED",
            Self::LoginFailed => "LOGIN_FAILED",
            Self::PatientCreated => "PATIENT_CREATED",
            Self::PatientRead => "PATIENT_READ",
            Self::PatientsRead => "PATIENTS_READ",
            Self::PatientUpdated => "PATIENT_UPDATED",
            Self::PatientDeleted => "PATIENT_DELETED",
            Self::DoctorCreated => "DOCTOR_CREATED",
            Self::DoctorUpdated => "DOCTOR_UPDATED",
            Self::DoctorDeleted => "DOCTOR_DELETED",
            Self::MappingCreated => "MAPPING_CREATED",
            Self::MappingDeleted => "MAPPING_DELETED",
            Self::PasswordChanged => "PASSWORD_CHANGED",
            Self::MfaEnabled => "MFA_ENABLED",
            Self::MfaDisabled => "MFA_DISABLED",
            Self::SessionRevoked => "SESSION_REVOKED",
            Self::UserDisabled => "USER_DISABLED",
            Self::UserEnabled => "USER_ENABLED",
        }
    }

    fn from_db(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityType {
    User,
    Patient,
    Doctor,
    Mapping,
}

impl EntityType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Patient => "PATIENT",
            Self::Doctor => "DOCTOR",
            Self::Mapping => "MAPPING",
        }
    }

    fn from_db(s: &str) -> Self {
        match s {
            "USER" => Self::User,
            "PATIENT" => Self::Patient,
            "DOCTOR" => Self::Doctor,
            _ => Self::Mapping,
        }
    }
}

/// An event about to be recorded.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub actor: Option<Uuid>,
    pub action: Action,
    pub entity_type: EntityType,
    pub entity_id: Option<Uuid>,
    pub request_id: Option<&'a str>,
    /// The other records it concerns: an assignment's patient and doctor,
    /// the patients a list read served.
    pub others: Vec<Uuid>,
}

impl<'a> Event<'a> {
    /// An action of a signed-in viewer on an entity.
    pub fn by(viewer: &'a Viewer, action: Action, entity_type: EntityType, entity_id: Uuid) -> Self {
        Self {
            actor: Some(viewer.user_id),
            action,
            entity_type,
            entity_id: Some(entity_id),
            request_id: viewer.request_id.as_deref(),
            others: Vec::new(),
        }
    }

    /// An action of a signed-in viewer on an assignment, which concerns its
    /// patient and its doctor too.
    pub fn on_mapping(viewer: &'a Viewer, action: Action, mapping: Assigned) -> Self {
        Self {
            others: vec![mapping.patient, mapping.doctor],
            ..Self::by(viewer, action, EntityType::Mapping, mapping.id)
        }
    }

    /// Every record the event concerns, each once: the entity first.
    pub fn entity_ids(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = Vec::with_capacity(1 + self.others.len());
        for id in self.entity_id.iter().chain(&self.others) {
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        ids
    }
}

/// An assignment, as far as its events name it.
#[derive(Debug, Clone, Copy)]
pub struct Assigned {
    pub id: Uuid,
    pub patient: Uuid,
    pub doctor: Uuid,
}

impl From<&MappingRow> for Assigned {
    fn from(row: &MappingRow) -> Self {
        Self {
            id: row.id,
            patient: row.patient_id,
            doctor: row.doctor_id,
        }
    }
}

/// The events of a delete that took assignments with it: one
/// `MAPPING_DELETED` per removed assignment, then the entity's own event.
pub fn with_removed_mappings<'a>(
    viewer: &'a Viewer,
    removed: impl IntoIterator<Item = Assigned>,
    deleted: Event<'a>,
) -> Vec<Event<'a>> {
    removed
        .into_iter()
        .map(|mapping| Event::on_mapping(viewer, Action::MappingDeleted, mapping))
        .chain(std::iter::once(deleted))
        .collect()
}

/// The patients one request served through lists and nested fields, each
/// once, gathered where they are loaded (the list queries and the loaders)
/// for the request's one `PATIENTS_READ` event.
#[derive(Debug, Clone, Default)]
pub struct Served(Arc<Mutex<ServedIds>>);

#[derive(Debug, Default)]
struct ServedIds {
    seen: HashSet<Uuid>,
    in_order: Vec<Uuid>,
}

impl Served {
    pub fn add(&self, ids: impl IntoIterator<Item = Uuid>) {
        let mut served = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            if served.seen.insert(id) {
                served.in_order.push(id);
            }
        }
    }

    /// The patients served so far, in the order they were first loaded.
    pub fn ids(&self) -> Vec<Uuid> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).in_order.clone()
    }
}

/// The `PATIENTS_READ` events of one HTTP request (one per GraphQL
/// operation that served patients), in one statement and committed before
/// the caller answers: if this fails, the caller must send no patient data.
pub async fn record_reads(db: &Db, reads: &[(&Viewer, Vec<Uuid>)]) -> AppResult<()> {
    let events: Vec<Event<'_>> = reads
        .iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(viewer, ids)| Event {
            actor: Some(viewer.user_id),
            action: Action::PatientsRead,
            entity_type: EntityType::Patient,
            entity_id: None,
            request_id: viewer.request_id.as_deref(),
            others: ids.clone(),
        })
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    db.run(async |conn| record(conn, &events).await).await
}

/// Appends events in the caller's transaction.
pub async fn record(tx: &mut AsyncPgConnection, events: &[Event<'_>]) -> AppResult<()> {
    let rows: Vec<NewAuditRow<'_>> = events
        .iter()
        .map(|e| NewAuditRow {
            actor_id: e.actor,
            action: e.action.as_str(),
            entity_type: e.entity_type.as_str(),
            entity_id: e.entity_id,
            request_id: e.request_id,
            entity_ids: e.entity_ids(),
        })
        .collect();
    Ok(store::insert(tx, &rows).await?)
}

/// A recorded event.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub action: Action,
    pub entity_type: EntityType,
    pub entity_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub entity_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    /// Events that concern this record (their `entity_ids` hold it).
    pub entity_id: Option<Uuid>,
    pub action: Option<Action>,
}

impl AuditFilter {
    fn row(&self) -> AuditFilterRow {
        AuditFilterRow {
            actor_id: self.actor_id,
            entity_id: self.entity_id,
            action: self.action.map(Action::as_str),
        }
    }
}

/// Events newest first (admins only).
pub async fn list(
    db: &Db,
    viewer: &Viewer,
    filter: &AuditFilter,
    limit: Limit,
    after: Option<Cursor>,
) -> AppResult<Page<AuditEvent>> {
    viewer.require_admin()?;
    let before = match after {
        Some(Cursor::Seq(n)) => Some(n),
        _ => None,
    };
    let has_previous = before.is_some();
    db.run(async |conn| {
        let rows = store::list_page(conn, &filter.row(), before, limit.get() + 1).await?;
        let events = rows.into_iter().filter_map(AuditEvent::from_row).collect();
        Ok(Page::from_rows(events, limit, has_previous, |e| Cursor::Seq(e.id)))
    })
    .await
}

/// One page of each patient's access log (every event that concerns it),
/// newest first, for those of `patients` the viewer may see.
pub async fn access_logs(
    db: &Db,
    viewer: &Viewer,
    patients: &[Uuid],
    limit: Limit,
    after: Option<Cursor>,
) -> AppResult<HashMap<Uuid, Page<AuditEvent>>> {
    let before = match after {
        Some(Cursor::Seq(n)) => Some(n),
        _ => None,
    };
    db.run(async |conn| {
        let rows = store::access_logs(conn, viewer, patients, before, limit.get() + 1).await?;
        let mut logs: HashMap<Uuid, Vec<AuditEvent>> = HashMap::new();
        for row in rows {
            if let Some(event) = AuditEvent::from_row(row.event) {
                logs.entry(row.patient_id).or_default().push(event);
            }
        }
        Ok(patients
            .iter()
            .map(|id| {
                let events = logs.remove(id).unwrap_or_default();
                (
                    *id,
                    Page::from_rows(events, limit, before.is_some(), |e| Cursor::Seq(e.id)),
                )
            })
            .collect())
    })
    .await
}

/// How many events concern each of `patients` that the viewer may see.
pub async fn access_log_counts(db: &Db, viewer: &Viewer, patients: &[Uuid]) -> AppResult<HashMap<Uuid, i64>> {
    db.run(async |conn| {
        let counts = store::access_log_counts(conn, viewer, patients).await?;
        Ok(counts.into_iter().map(|c| (c.patient_id, c.events)).collect())
    })
    .await
}

impl AuditEvent {
    fn from_row(r: AuditRow) -> Option<Self> {
        Some(Self {
            id: r.id,
            at: r.at,
            actor_id: r.actor_id,
            action: Action::from_db(&r.action)?,
            entity_type: EntityType::from_db(&r.entity_type),
            entity_id: r.entity_id,
            request_id: r.request_id,
            entity_ids: r.entity_ids,
        })
    }
}

pub async fn count(db: &Db, viewer: &Viewer, filter: &AuditFilter) -> AppResult<i64> {
    viewer.require_admin()?;
    db.run(async |conn| Ok(store::count(conn, &filter.row()).await?)).await
}
