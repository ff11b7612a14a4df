//! `/api/mappings`: which doctors are assigned to which of the caller's
//! patients.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    RestState,
    error::{ApiResult, ErrorBody},
    extract::{Auth, Body, Id, Idempotency, IdempotencyHeader, ListQuery, Paging},
    page,
};
use crate::{
    doctors::Doctor,
    input::parse_id,
    mappings::{self, Mapping, MappingQuery},
    paging::Order,
};

/// The patient (one the caller may see) and the doctor to assign.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignBody {
    #[schema(format = Uuid)]
    pub patient_id: String,
    #[schema(format = Uuid)]
    pub doctor_id: String,
}

/// Assigns a doctor to a patient.
#[utoipa::path(
    operation_id = "assignDoctor",
    post, path = "/api/mappings", tag = "mappings",
    request_body = AssignBody,
    params(IdempotencyHeader),
    responses(
        (status = 201, description = "The new assignment", body = Mapping,
            links(
                ("DoctorsOfPatient" = (operation_id = "listDoctorsOfPatient",
                    parameters(("id" = "$response.body#/patientId")))),
                ("RemoveMapping" = (operation_id = "removeMapping", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 404, description = "No such patient (or not the caller's), or no such doctor", body = ErrorBody),
        (status = 409, description = "This doctor is already assigned to this patient, or the Idempotency-Key was used for a different request", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<RestState>,
    Auth(viewer): Auth,
    Idempotency(key): Idempotency,
    Body(body): Body<AssignBody>,
) -> ApiResult<Response> {
    let patient_id = parse_id("patientId", &body.patient_id)?;
    let doctor_id = parse_id("doctorId", &body.doctor_id)?;
    let mapping = mappings::assign(&app.db, &viewer, patient_id, doctor_id, key.as_ref()).await?;
    // No `Location`: `/api/mappings/{id}` reads a patient's doctors but
    // deletes an assignment, so no single URL names the new assignment.
    Ok((StatusCode::CREATED, Json(mapping)).into_response())
}

/// Assignments whose patient the caller may see, newest first.
#[utoipa::path(
    operation_id = "listMappings",
    get, path = "/api/mappings", tag = "mappings",
    params(ListQuery),
    responses((status = 200, description = "One page of assignments", body = Vec<Mapping>,
        headers(("Link" = String, description = "`<...>; rel=\"next\"` while more rows exist")))),
    security(("bearer" = []))
)]
pub async fn list(State(app): State<RestState>, Auth(viewer): Auth, Paging(params): Paging) -> ApiResult<Response> {
    let after = params.cursor(Some(Order::NEWEST_FIRST))?;
    let rows = mappings::list(&app.db, &viewer, &MappingQuery::default(), params.limit, after).await?;
    Ok(page("/api/mappings", &params, rows))
}

/// The doctors assigned to a patient.
#[utoipa::path(
    operation_id = "listDoctorsOfPatient",
    get, path = "/api/mappings/{id}", tag = "mappings",
    params(("id" = Uuid, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "The patient's doctors", body = Vec<Doctor>),
        (status = 404, description = "No such patient, or not the caller's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn doctors_of_patient(
    State(app): State<RestState>,
    Auth(viewer): Auth,
    Id(patient_id): Id,
) -> ApiResult<Json<Vec<Doctor>>> {
    let doctors = mappings::doctors_of_patient(&app.db, &viewer, patient_id).await?;
    Ok(Json(doctors))
}

/// Removes an assignment.
#[utoipa::path(
    operation_id = "removeMapping",
    delete, path = "/api/mappings/{id}", tag = "mappings",
    params(("id" = Uuid, Path, description = "The assignment's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such assignment, or its patient is not the caller's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(State(app): State<RestState>, Auth(viewer): Auth, Id(id): Id) -> ApiResult<impl IntoResponse> {
    mappings::remove(&app.db, &viewer, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
