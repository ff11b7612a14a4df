//! The `Doctor` type, its connection, and the doctor queries and mutations.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result};

use super::{
    loaders::Loaders,
    mappings::MappingNode,
    patients::PatientNode,
    request_viewer,
    types::{self, DateTime, SortDirection, User},
};
use crate::{
    db::Db,
    doctors::{self, CreateDoctor, Doctor, DoctorQuery, UpdateDoctor},
    idempotency::IdempotencyKey,
    input::{SearchTerm, parse_id},
    paging::{self, Cursor, Order},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum DoctorOrderField {
    Name,
    CreatedAt,
}

#[derive(Debug, Clone, Copy, InputObject)]
pub struct DoctorOrder {
    pub field: DoctorOrderField,
    pub direction: SortDirection,
}

fn default_doctor_order() -> DoctorOrder {
    DoctorOrder {
        field: DoctorOrderField::Name,
        direction: SortDirection::Asc,
    }
}

impl From<DoctorOrder> for Order {
    fn from(o: DoctorOrder) -> Self {
        Order {
            field: match o.field {
                DoctorOrderField::Name => paging::SortField::Name,
                DoctorOrderField::CreatedAt => paging::SortField::CreatedAt,
            },
            direction: o.direction.into(),
        }
    }
}

/// A doctor in the shared directory: every signed-in user can read all doctors.
pub struct DoctorNode(pub std::sync::Arc<Doctor>);

#[Object(name = "Doctor")]
impl DoctorNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn specialization(&self) -> &str {
        &self.0.specialization
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// Unique across doctors when present.
    async fn license_number(&self) -> Option<&str> {
        self.0.license_number.as_deref()
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
    /// Only the patients of this doctor that the viewer may see.
    async fn patients(&self, ctx: &Context<'_>) -> Result<Vec<PatientNode>> {
        let loaded = ctx.data::<Loaders>()?.patients_by_doctor.load_one(self.0.id).await?;
        Ok(loaded
            .iter()
            .flat_map(|list| list.iter())
            .cloned()
            .map(PatientNode)
            .collect())
    }
    /// Only the assignments whose patient the viewer may see.
    async fn mappings(&self, ctx: &Context<'_>) -> Result<Vec<MappingNode>> {
        let loaded = ctx.data::<Loaders>()?.mappings_by_doctor.load_one(self.0.id).await?;
        Ok(loaded
            .iter()
            .flat_map(|list| list.iter())
            .cloned()
            .map(MappingNode)
            .collect())
    }
}

impl From<Doctor> for DoctorNode {
    fn from(d: Doctor) -> Self {
        Self(std::sync::Arc::new(d))
    }
}

pub struct DoctorCount {
    db: Db,
    query: DoctorQuery,
}

impl super::connection::Counted for DoctorCount {
    async fn count(&self, _ctx: &Context<'_>) -> Result<i64> {
        Ok(doctors::count(&self.db, &self.query).await?)
    }
}

connection!(DoctorConnection, DoctorEdge, DoctorNode, Doctor, DoctorCount);

#[derive(InputObject)]
pub struct CreateDoctorInput {
    pub name: String,
    pub specialization: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub license_number: Option<String>,
}

/// Same rules as UpdatePatientInput; name and specialization cannot be cleared.
#[derive(InputObject)]
pub struct UpdateDoctorInput {
    pub name: MaybeUndefined<String>,
    pub specialization: MaybeUndefined<String>,
    pub email: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub license_number: MaybeUndefined<String>,
}

#[derive(Default)]
pub struct DoctorQueries;

#[Object]
impl DoctorQueries {
    async fn doctor(&self, ctx: &Context<'_>, id: ID) -> Result<Option<DoctorNode>> {
        let (db, _viewer) = request_viewer(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(doctors::get(db, id).await?.map(DoctorNode::from))
    }

    /// All doctors. search matches name or specialization case-insensitively by substring.
    #[graphql(complexity = "types::page_complexity(first, child_complexity)")]
    async fn doctors(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
        specialization: Option<String>,
        #[graphql(default_with = "Some(default_doctor_order())")] order_by: Option<DoctorOrder>,
    ) -> Result<DoctorConnection> {
        let (db, _viewer) = request_viewer(ctx)?;
        let limit = types::limit(first)?;
        let order: Order = order_by.unwrap_or_else(default_doctor_order).into();
        let after = after.map(|c| Cursor::decode("after", &c, Some(order))).transpose()?;
        let search = search.map(|s| SearchTerm::parse("search", &s)).transpose()?.flatten();
        let specialization = DoctorQuery::specialization(specialization.as_deref())?;
        let query = DoctorQuery {
            search,
            specialization,
            order,
        };
        let page = doctors::list(db, &query, limit, after).await?;
        Ok(DoctorConnection::new(page, DoctorCount { db: db.clone(), query }))
    }
}

#[derive(Default)]
pub struct DoctorMutations;

#[Object]
impl DoctorMutations {
    async fn create_doctor(&self, ctx: &Context<'_>, input: CreateDoctorInput) -> Result<DoctorNode> {
        let (db, viewer) = request_viewer(ctx)?;
        let input = CreateDoctor {
            name: input.name,
            specialization: input.specialization,
            email: input.email,
            phone: input.phone,
            license_number: input.license_number,
        };
        let key = ctx.data_opt::<IdempotencyKey>();
        Ok(doctors::create(db, viewer, input, key).await?.into())
    }

    /// Only the doctor's creator or an admin.
    async fn update_doctor(&self, ctx: &Context<'_>, id: ID, input: UpdateDoctorInput) -> Result<DoctorNode> {
        let (db, viewer) = request_viewer(ctx)?;
        let id = parse_id("id", &id)?;
        let input = UpdateDoctor {
            name: types::change(input.name, |v| v),
            specialization: types::change(input.specialization, |v| v),
            email: types::change(input.email, |v| v),
            phone: types::change(input.phone, |v| v),
            license_number: types::change(input.license_number, |v| v),
        };
        Ok(doctors::update(db, viewer, id, input).await?.into())
    }

    /// Only the doctor's creator or an admin. Deletes the doctor's assignments too; returns the deleted id.
    async fn delete_doctor(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let (db, viewer) = request_viewer(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(ID(doctors::delete(db, viewer, id).await?.to_string()))
    }
}
