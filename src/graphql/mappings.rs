//! The `Mapping` type, its connection, and assigning and removing doctors.

use async_graphql::{Context, ID, InputObject, Object, Result};

use super::{
    doctors::DoctorNode,
    loaders::Loaders,
    patients::PatientNode,
    request_viewer,
    types::{self, DateTime, User},
};
use crate::{
    db::Db,
    error::AppError,
    idempotency::IdempotencyKey,
    input::parse_id,
    mappings::{self, Mapping, MappingQuery},
    paging::{Cursor, Order},
    viewer::Viewer,
};

/// A doctor assigned to a patient. A (patient, doctor) pair is assigned at most once.
pub struct MappingNode(pub std::sync::Arc<Mapping>);

#[Object(name = "Mapping")]
impl MappingNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn patient(&self, ctx: &Context<'_>) -> Result<PatientNode> {
        let patient = ctx.data::<Loaders>()?.patients.load_one(self.0.patient_id).await?;
        Ok(PatientNode(patient.ok_or(AppError::NotFound)?))
    }
    async fn doctor(&self, ctx: &Context<'_>) -> Result<DoctorNode> {
        let doctor = ctx.data::<Loaders>()?.doctors.load_one(self.0.doctor_id).await?;
        Ok(DoctorNode(doctor.ok_or(AppError::NotFound)?))
    }
    async fn assigned_by(&self, ctx: &Context<'_>) -> Result<User> {
        super::user(ctx, self.0.assigned_by).await
    }
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
}

impl From<Mapping> for MappingNode {
    fn from(m: Mapping) -> Self {
        Self(std::sync::Arc::new(m))
    }
}

pub struct MappingCount {
    db: Db,
    viewer: Viewer,
    query: MappingQuery,
}

impl super::connection::Counted for MappingCount {
    async fn count(&self, _ctx: &Context<'_>) -> Result<i64> {
        Ok(mappings::count(&self.db, &self.viewer, &self.query).await?)
    }
}

connection!(MappingConnection, MappingEdge, MappingNode, Mapping, MappingCount);

#[derive(InputObject)]
pub struct AssignDoctorInput {
    pub patient_id: ID,
    pub doctor_id: ID,
}

#[derive(Default)]
pub struct MappingQueries;

#[Object]
impl MappingQueries {
    async fn mapping(&self, ctx: &Context<'_>, id: ID) -> Result<Option<MappingNode>> {
        let (db, viewer) = request_viewer(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(mappings::get(db, viewer, id).await?.map(MappingNode::from))
    }

    /// Assignments whose patient the viewer may see, newest first, optionally narrowed to one patient or one doctor.
    #[graphql(complexity = "types::page_complexity(first, child_complexity)")]
    async fn mappings(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        patient_id: Option<ID>,
        doctor_id: Option<ID>,
    ) -> Result<MappingConnection> {
        let (db, viewer) = request_viewer(ctx)?;
        let limit = types::limit(first)?;
        let after = after
            .map(|c| Cursor::decode("after", &c, Some(Order::NEWEST_FIRST)))
            .transpose()?;
        let query = MappingQuery {
            patient_id: types::optional_id("patientId", patient_id.as_ref())?,
            doctor_id: types::optional_id("doctorId", doctor_id.as_ref())?,
        };
        let page = mappings::list(db, viewer, &query, limit, after).await?;
        Ok(MappingConnection::new(
            page,
            MappingCount {
                db: db.clone(),
                viewer: viewer.clone(),
                query,
            },
        ))
    }
}

#[derive(Default)]
pub struct MappingMutations;

#[Object]
impl MappingMutations {
    /// The viewer must be able to see the patient. Assigning the same pair twice is a CONFLICT error.
    async fn assign_doctor(&self, ctx: &Context<'_>, input: AssignDoctorInput) -> Result<MappingNode> {
        let (db, viewer) = request_viewer(ctx)?;
        let patient_id = parse_id("patientId", &input.patient_id)?;
        let doctor_id = parse_id("doctorId", &input.doctor_id)?;
        let key = ctx.data_opt::<IdempotencyKey>();
        Ok(mappings::assign(db, viewer, patient_id, doctor_id, key).await?.into())
    }

    /// Removes a doctor from a patient; returns the deleted mapping id.
    async fn remove_mapping(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let (db, viewer) = request_viewer(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(ID(mappings::remove(db, viewer, id).await?.id.to_string()))
    }
}
