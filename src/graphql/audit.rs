//! The `AuditEvent` type and the admins-only `auditEvents` query.

use async_graphql::{Context, Enum, ID, Object, Result};

use super::{
    request_viewer,
    types::{self, DateTime, User},
};
use uuid::Uuid;

use crate::{
    audit::{self, AuditEvent, AuditFilter},
    db::Db,
    paging::Cursor,
    viewer::Viewer,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::audit::Action")]
pub enum AuditAction {
    Register,
    LoginSucceeded,
    LoginFailed,
    PatientCreated,
    PatientRead,
    /// A list or nested read that served patients (patients, Doctor.patients, Mapping.patient, GET /api/patients, ...); entityIds names every patient served.
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
    /// One session ended by revokeSession, or every session by logoutEverywhere.
    SessionRevoked,
    UserDisabled,
    UserEnabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::audit::EntityType")]
pub enum AuditEntityType {
    User,
    Patient,
    Doctor,
    Mapping,
}

/// One entry of the append-only audit trail.
pub struct AuditEventNode(pub AuditEvent);

#[Object(name = "AuditEvent")]
impl AuditEventNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn at(&self) -> DateTime {
        DateTime(self.0.at)
    }
    /// Null where no user is known (a failed login for an unknown email).
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.0.actor_id {
            Some(id) => super::user(ctx, id).await.map(Some),
            None => Ok(None),
        }
    }
    async fn action(&self) -> AuditAction {
        self.0.action.into()
    }
    async fn entity_type(&self) -> AuditEntityType {
        self.0.entity_type.into()
    }
    async fn entity_id(&self) -> Option<ID> {
        self.0.entity_id.map(|id| ID(id.to_string()))
    }
    /// The X-Request-Id of the request that caused it.
    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
    /// Every record the event concerns, without repeats: for a mapping event
    /// the mapping, its patient and its doctor; otherwise the entity itself
    /// (empty for a failed login of an unknown email).
    async fn entity_ids(&self) -> Vec<ID> {
        self.0.entity_ids.iter().map(|id| ID(id.to_string())).collect()
    }
}

impl From<AuditEvent> for AuditEventNode {
    fn from(e: AuditEvent) -> Self {
        Self(e)
    }
}

pub struct AuditCount {
    db: Db,
    viewer: Viewer,
    of: Counting,
}

enum Counting {
    /// The trail, narrowed (admins only).
    Trail(AuditFilter),
    /// One patient's access log.
    PatientLog(Uuid),
}

impl AuditCount {
    pub fn patient_log(db: &Db, viewer: &Viewer, patient: Uuid) -> Self {
        Self {
            db: db.clone(),
            viewer: viewer.clone(),
            of: Counting::PatientLog(patient),
        }
    }
}

impl super::connection::Counted for AuditCount {
    async fn count(&self, ctx: &Context<'_>) -> Result<i64> {
        match &self.of {
            Counting::Trail(filter) => Ok(audit::count(&self.db, &self.viewer, filter).await?),
            // Through a loader: the logs of a page of patients, counted at once.
            Counting::PatientLog(patient) => {
                let loaders = ctx.data::<super::loaders::Loaders>()?;
                Ok(loaders.access_log_counts.load_one(*patient).await?.unwrap_or(0))
            }
        }
    }
}

connection!(
    AuditEventConnection,
    AuditEventEdge,
    AuditEventNode,
    AuditEvent,
    AuditCount
);

#[derive(Default)]
pub struct AuditQueries;

#[Object]
impl AuditQueries {
    /// Admins only; newest first.
    #[graphql(complexity = "types::page_complexity(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: Option<i32>,
        after: Option<String>,
        actor_id: Option<ID>,
        #[graphql(desc = "Events that concern this record: whose entityIds contain it.")] entity_id: Option<ID>,
        action: Option<AuditAction>,
    ) -> Result<AuditEventConnection> {
        let (db, viewer) = request_viewer(ctx)?;
        viewer.require_admin()?;
        let limit = types::limit(first)?;
        let after = after.map(|c| Cursor::decode("after", &c, None)).transpose()?;
        let filter = AuditFilter {
            actor_id: types::optional_id("actorId", actor_id.as_ref())?,
            entity_id: types::optional_id("entityId", entity_id.as_ref())?,
            action: action.map(Into::into),
        };
        let page = audit::list(db, viewer, &filter, limit, after).await?;
        Ok(AuditEventConnection::new(
            page,
            AuditCount {
                db: db.clone(),
                viewer: viewer.clone(),
                of: Counting::Trail(filter),
            },
        ))
    }

    /// Admins only.
    async fn audit_seal(&self, ctx: &Context<'_>) -> Result<AuditSeal> {
        let (db, viewer) = request_viewer(ctx)?;
        Ok(AuditSeal(audit::seal::status(db, viewer).await?))
    }
}

/// The state of the audit trail's seal (admins only).
pub struct AuditSeal(audit::seal::SealStatus);

/// GraphQL's Int is 32 bits; counts beyond it show as its largest value.
fn as_int(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[Object]
impl AuditSeal {
    /// Events covered by a seal.
    async fn sealed_events(&self) -> i32 {
        as_int(self.0.sealed_events)
    }
    /// Committed events not sealed yet; sealing runs every few seconds.
    async fn pending_events(&self) -> i32 {
        as_int(self.0.pending_events)
    }
    /// The newest sealed block, numbered from 1; 0 before the first seal.
    async fn head_block(&self) -> i32 {
        as_int(self.0.head_block)
    }
    /// Hex hash of the newest block, for keeping outside the database and checking later with `healthcare-api audit verify --head`.
    async fn head_hash(&self) -> Option<String> {
        self.0.head_hash.map(hex::encode)
    }
    /// When the newest block was sealed.
    async fn sealed_at(&self) -> Option<DateTime> {
        self.0.sealed_at.map(DateTime)
    }
}
