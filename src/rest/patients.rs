//! `/api/patients`: the patient records of the caller (everyone's for admins).

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    RestState, created,
    error::ApiResult,
    extract::{Auth, Body, Id, SearchQuery, Searching},
    page,
};
use crate::{
    error::AppError,
    input::{self, Change},
    paging::Order,
    patients::{self, CreatePatient, Gender, Patient, PatientQuery, UpdatePatient},
};

/// A new patient: the fields of GraphQL's `CreatePatientInput`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePatientBody {
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
/// nullable field (null for `name` or `gender` is a 400).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatePatientBody {
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

fn date_of_birth(raw: &str) -> Result<NaiveDate, AppError> {
    input::date("dateOfBirth", raw)
}

/// Creates a patient record.
#[utoipa::path(
    operation_id = "createPatient",
    post, path = "/api/patients", tag = "patients",
    request_body = CreatePatientBody,
    responses((status = 201, description = "The new patient", body = Patient,
        headers(("Location" = String, description = "The patient's URL")),
        links(
            ("GetPatient" = (operation_id = "getPatient", parameters(("id" = "$response.body#/id")))),
            ("UpdatePatient" = (operation_id = "updatePatient", parameters(("id" = "$response.body#/id")))),
            ("DeletePatient" = (operation_id = "deletePatient", parameters(("id" = "$response.body#/id")))),
            ("DoctorsOfPatient" = (operation_id = "listDoctorsOfPatient", parameters(("id" = "$response.body#/id")))),
        ))),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<RestState>,
    Auth(viewer): Auth,
    Body(body): Body<CreatePatientBody>,
) -> ApiResult<Response> {
    let input = CreatePatient {
        name: body.name,
        date_of_birth: body.date_of_birth.as_deref().map(date_of_birth).transpose()?,
        gender: body.gender,
        email: body.email,
        phone: body.phone,
        address: body.address,
        medical_history: body.medical_history,
    };
    let patient = patients::create(&app.db, &viewer, input).await?;
    Ok(created(&format!("/api/patients/{}", patient.id), patient))
}

/// The caller's patients (everyone's for admins), newest first.
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
    request_body = UpdatePatientBody,
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
    Body(body): Body<UpdatePatientBody>,
) -> ApiResult<Json<Patient>> {
    let input = UpdatePatient {
        name: body.name,
        date_of_birth: body.date_of_birth.try_map(|d| date_of_birth(&d))?,
        gender: body.gender,
        email: body.email,
        phone: body.phone,
        address: body.address,
        medical_history: body.medical_history,
    };
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
