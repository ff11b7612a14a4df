//! `/api/patients`: the patient records of the caller (everyone's for admins).

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::{
    RestState, created,
    error::{ApiResult, ErrorBody},
    extract::{Auth, Body, Id, Idempotency, IdempotencyHeader, SearchQuery, Searching},
    page,
};
use crate::{
    audit,
    error::AppError,
    paging::Order,
    patients::{self, CreatePatient, Patient, PatientQuery, UpdatePatient},
};

/// Creates a patient record.
#[utoipa::path(
    operation_id = "createPatient",
    post, path = "/api/patients", tag = "patients",
    request_body = CreatePatient,
    params(IdempotencyHeader),
    responses((status = 201, description = "The new patient (or, sent again with its Idempotency-Key, the one it made)", body = Patient,
        headers(("Location" = String, description = "The patient's URL")),
        links(
            ("GetPatient" = (operation_id = "getPatient", parameters(("id" = "$response.body#/id")))),
            ("UpdatePatient" = (operation_id = "updatePatient", parameters(("id" = "$response.body#/id")))),
            ("DeletePatient" = (operation_id = "deletePatient", parameters(("id" = "$response.body#/id")))),
            ("DoctorsOfPatient" = (operation_id = "listDoctorsOfPatient", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 409, description = "The Idempotency-Key was used for a different request", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<RestState>,
    Auth(viewer): Auth,
    Idempotency(key): Idempotency,
    Body(input): Body<CreatePatient>,
) -> ApiResult<Response> {
    let patient = patients::create(&app.db, &viewer, input, key.as_ref()).await?;
    Ok(created(&format!("/api/patients/{}", patient.id), patient))
}

/// The caller's patients (everyone's for admins), newest first. The page's
/// patients are recorded in the audit trail (one `PATIENTS_READ` event).
#[utoipa::path(
    operation_id = "listPatients",
    get, path = "/api/patients", tag = "patients",
    params(SearchQuery),
    responses((status = 200, description = "One page of patients", body = Vec<Patient>,
        headers(("Link" = String, description = "`<...>; rel=\"next\"` while more rows exist")))),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<RestState>,
    Auth(viewer): Auth,
    Searching(params): Searching,
) -> ApiResult<Response> {
    let order = Order::NEWEST_FIRST;
    let after = params.cursor(Some(order))?;
    let query = PatientQuery {
        search: params.search.clone(),
        order,
    };
    let rows = patients::list(&app.db, &viewer, &query, params.limit, after).await?;
    // Accounted for before any of it leaves.
    let served = rows.rows.iter().map(|(_, patient)| patient.id).collect();
    audit::record_reads(&app.db, &[(&viewer, served)]).await?;
    Ok(page("/api/patients", &params, rows))
}

/// One patient. Reading it is recorded in the audit trail.
#[utoipa::path(
    operation_id = "getPatient",
    get, path = "/api/patients/{id}", tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "The patient", body = Patient),
        (status = 404, description = "No such patient, or not the caller's", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(State(app): State<RestState>, Auth(viewer): Auth, Id(id): Id) -> ApiResult<Json<Patient>> {
    let patient = patients::get(&app.db, &viewer, id).await?.ok_or(AppError::NotFound)?;
    Ok(Json(patient))
}

/// Changes a patient.
#[utoipa::path(
    operation_id = "updatePatient",
    put, path = "/api/patients/{id}", tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    request_body = UpdatePatient,
    responses(
        (status = 200, description = "The patient as changed", body = Patient),
        (status = 404, description = "No such patient, or not the caller's", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<RestState>,
    Auth(viewer): Auth,
    Id(id): Id,
    Body(input): Body<UpdatePatient>,
) -> ApiResult<Json<Patient>> {
    Ok(Json(patients::update(&app.db, &viewer, id, input).await?))
}

/// Deletes a patient and its assignments.
#[utoipa::path(
    operation_id = "deletePatient",
    delete, path = "/api/patients/{id}", tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such patient, or not the caller's", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(State(app): State<RestState>, Auth(viewer): Auth, Id(id): Id) -> ApiResult<impl IntoResponse> {
    patients::delete(&app.db, &viewer, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
