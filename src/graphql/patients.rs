//! The `Patient` type, its connection, and the patient queries and mutations.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result};

use super::{
    audit::{AuditCount, AuditEventConnection},
    doctors::DoctorNode,
    loaders::{Loaders, LogPage},
    mappings::MappingNode,
    request_viewer,
    types::{self, Date, DateTime, SortDirection, User},
};
use crate::{
    audit::Served,
    db::Db,
    idempotency::IdempotencyKey,
    input::{SearchTerm, parse_id},
    paging::{self, Cursor, Order, Page},
    patients::{self, CreatePatient, Patient, PatientQuery, UpdatePatient},
    viewer::Viewer,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::patients::Gender")]
pub enum Gender {
    Female,
    Male,
    Other,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PatientOrderField {
    Name,
    CreatedAt,
}

#[derive(Debug, Clone, Copy, InputObject)]
pub struct PatientOrder {
    pub field: PatientOrderField,
    pub direction: SortDirection,
}

fn default_patient_order() -> PatientOrder {
    PatientOrder {
        field: PatientOrderField::CreatedAt,
        direction: SortDirection::Desc,
    }
}

impl From<PatientOrder> for Order {
    fn from(o: PatientOrder) -> Self {
        Order {
            field: match o.field {
                PatientOrderField::Name => paging::SortField::Name,
                PatientOrderField::CreatedAt => paging::SortField::CreatedAt,
            },
            direction: o.direction.into(),
        }
    }
}

/// A patient record. Visible only to the user who created it and to admins.
pub struct PatientNode(pub std::sync::Arc<Patient>);

#[Object(name = "Patient")]
impl PatientNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn date_of_birth(&self) -> Option<Date> {
        self.0.date_of_birth.map(Date::Valid)
    }
    async fn gender(&self) -> Gender {
        self.0.gender.into()
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn address(&self) -> Option<&str> {
        self.0.address.as_deref()
    }
    /// Free-text clinical history and notes.
    async fn medical_history(&self) -> Option<&str> {
        self.0.medical_history.as_deref()
    }
    async fn created_by(&self, ctx: &Context<'_>) -> Result<User> {
        super::user(ctx, self.0.created_by).await
    }
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime {
        DateTime(self.0.updated_at)
    }
    /// The doctors assigned to this patient.
    async fn doctors(&self, ctx: &Context<'_>) -> Result<Vec<DoctorNode>> {
        let loaded = ctx.data::<Loaders>()?.doctors_by_patient.load_one(self.0.id).await?;
        Ok(loaded
            .iter()
            .flat_map(|list| list.iter())
            .cloned()
            .map(DoctorNode)
            .collect())
    }
    /// Who read or changed this patient's record, newest first: every event
    /// whose entityIds contain this patient (single and list reads, updates,
    /// assignments, removals). Visible to whoever may see the patient.
    #[graphql(complexity = "types::page_complexity(first, child_complexity)")]
    async fn access_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<AuditEventConnection> {
        let (db, viewer) = request_viewer(ctx)?;
        let limit = types::limit(first)?;
        let before = match after.map(|c| Cursor::decode("after", &c, None)).transpose()? {
            Some(Cursor::Seq(n)) => Some(n),
            _ => None,
        };
        let key = LogPage {
            patient: self.0.id,
            limit,
            before,
        };
        let page = ctx.data::<Loaders>()?.access_logs.load_one(key).await?;
        let page = page.map_or_else(
            || Page::from_rows(Vec::new(), limit, before.is_some(), |_| Cursor::Seq(0)),
            |p| Page::clone(&p),
        );
        Ok(AuditEventConnection::new(
            page,
            AuditCount::patient_log(db, viewer, self.0.id),
        ))
    }
    /// The assignments of this patient.
    async fn mappings(&self, ctx: &Context<'_>) -> Result<Vec<MappingNode>> {
        let loaded = ctx.data::<Loaders>()?.mappings_by_patient.load_one(self.0.id).await?;
        Ok(loaded
            .iter()
            .flat_map(|list| list.iter())
            .cloned()
            .map(MappingNode)
            .collect())
    }
}

impl From<Patient> for PatientNode {
    fn from(p: Patient) -> Self {
        Self(std::sync::Arc::new(p))
    }
}

/// What `totalCount` counts, run only when it is selected.
pub struct PatientCount {
    db: Db,
    viewer: Viewer,
    query: PatientQuery,
}

impl super::connection::Counted for PatientCount {
    async fn count(&self, _ctx: &Context<'_>) -> Result<i64> {
        Ok(patients::count(&self.db, &self.viewer, &self.query).await?)
    }
}

connection!(PatientConnection, PatientEdge, PatientNode, Patient, PatientCount);

#[derive(InputObject)]
pub struct CreatePatientInput {
    pub name: String,
    pub date_of_birth: Option<Date>,
    #[graphql(default_with = "Some(Gender::Unknown)")]
    pub gender: Option<Gender>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub medical_history: Option<String>,
}

/// A field left out stays as it is; an explicit null clears a nullable field; null for name is a BAD_USER_INPUT error.
#[derive(InputObject)]
pub struct UpdatePatientInput {
    pub name: MaybeUndefined<String>,
    pub date_of_birth: MaybeUndefined<Date>,
    pub gender: MaybeUndefined<Gender>,
    pub email: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub address: MaybeUndefined<String>,
    pub medical_history: MaybeUndefined<String>,
}

#[derive(Default)]
pub struct PatientQueries;

#[Object]
impl PatientQueries {
    /// Null when no such patient exists or the viewer may not see it: the two are indistinguishable.
    async fn patient(&self, ctx: &Context<'_>, id: ID) -> Result<Option<PatientNode>> {
        let (db, viewer) = request_viewer(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(patients::get(db, viewer, id).await?.map(PatientNode::from))
    }

    /// The viewer's patients (all patients for admins). first is 1..100. search matches name case-insensitively by substring.
    #[graphql(complexity = "types::page_complexity(first, child_complexity)")]
    async fn patients(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
        #[graphql(default_with = "Some(default_patient_order())")] order_by: Option<PatientOrder>,
    ) -> Result<PatientConnection> {
        let (db, viewer) = request_viewer(ctx)?;
        let limit = types::limit(first)?;
        let order: Order = order_by.unwrap_or_else(default_patient_order).into();
        let after = after.map(|c| Cursor::decode("after", &c, Some(order))).transpose()?;
        let search = search.map(|s| SearchTerm::parse("search", &s)).transpose()?.flatten();
        let query = PatientQuery { search, order };
        let page: Page<Patient> = patients::list(db, viewer, &query, limit, after).await?;
        ctx.data::<Served>()?
            .add(page.rows.iter().map(|(_, patient)| patient.id));
        Ok(PatientConnection::new(
            page,
            PatientCount {
                db: db.clone(),
                viewer: viewer.clone(),
                query,
            },
        ))
    }
}

#[derive(Default)]
pub struct PatientMutations;

#[Object]
impl PatientMutations {
    async fn create_patient(&self, ctx: &Context<'_>, input: CreatePatientInput) -> Result<PatientNode> {
        let (db, viewer) = request_viewer(ctx)?;
        let input = CreatePatient {
            name: input.name,
            date_of_birth: input.date_of_birth.map(Date::into_text),
            gender: input.gender.map(Into::into),
            email: input.email,
            phone: input.phone,
            address: input.address,
            medical_history: input.medical_history,
        };
        let key = ctx.data_opt::<IdempotencyKey>();
        Ok(patients::create(db, viewer, input, key).await?.into())
    }

    async fn update_patient(&self, ctx: &Context<'_>, id: ID, input: UpdatePatientInput) -> Result<PatientNode> {
        let (db, viewer) = request_viewer(ctx)?;
        let id = parse_id("id", &id)?;
        let input = UpdatePatient {
            name: types::change(input.name, |v| v),
            date_of_birth: types::change(input.date_of_birth, Date::into_text),
            gender: types::change(input.gender, Into::into),
            email: types::change(input.email, |v| v),
            phone: types::change(input.phone, |v| v),
            address: types::change(input.address, |v| v),
            medical_history: types::change(input.medical_history, |v| v),
        };
        Ok(patients::update(db, viewer, id, input).await?.into())
    }

    /// Deletes the patient and its assignments; returns the deleted id.
    async fn delete_patient(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let (db, viewer) = request_viewer(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(ID(patients::delete(db, viewer, id).await?.to_string()))
    }
}
