//! `/api/doctors`: the shared directory. Every signed-in user reads it and
//! adds to it; only a doctor's creator or an admin changes or deletes one.

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
    doctors::{self, CreateDoctor, Doctor, DoctorQuery, UpdateDoctor},
    error::AppError,
    paging::Order,
};

/// Adds a doctor to the directory.
#[utoipa::path(
    operation_id = "createDoctor",
    post, path = "/api/doctors", tag = "doctors",
    request_body = CreateDoctor,
    params(IdempotencyHeader),
    responses(
        (status = 201, description = "The new doctor", body = Doctor,
            headers(("Location" = String, description = "The doctor's URL")),
            links(
                ("GetDoctor" = (operation_id = "getDoctor", parameters(("id" = "$response.body#/id")))),
                ("UpdateDoctor" = (operation_id = "updateDoctor", parameters(("id" = "$response.body#/id")))),
                ("DeleteDoctor" = (operation_id = "deleteDoctor", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 409, description = "Another doctor has this licence number, or the Idempotency-Key was used for a different request", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<RestState>,
    Auth(viewer): Auth,
    Idempotency(key): Idempotency,
    Body(input): Body<CreateDoctor>,
) -> ApiResult<Response> {
    let doctor = doctors::create(&app.db, &viewer, input, key.as_ref()).await?;
    Ok(created(&format!("/api/doctors/{}", doctor.id), doctor))
}

/// The directory, by name.
#[utoipa::path(
    operation_id = "listDoctors",
    get, path = "/api/doctors", tag = "doctors",
    params(SearchQuery),
    responses((status = 200, description = "One page of doctors", body = Vec<Doctor>,
        headers(("Link" = String, description = "`<...>; rel=\"next\"` while more rows exist")))),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<RestState>,
    Auth(_viewer): Auth,
    Searching(params): Searching,
) -> ApiResult<Response> {
    let order = Order::BY_NAME;
    let after = params.cursor(Some(order))?;
    let query = DoctorQuery {
        search: params.search.clone(),
        specialization: None,
        order,
    };
    let rows = doctors::list(&app.db, &query, params.limit, after).await?;
    Ok(page("/api/doctors", &params, rows))
}

/// One doctor.
#[utoipa::path(
    operation_id = "getDoctor",
    get, path = "/api/doctors/{id}", tag = "doctors",
    params(("id" = Uuid, Path, description = "The doctor's id")),
    responses(
        (status = 200, description = "The doctor", body = Doctor),
        (status = 404, description = "No such doctor", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(State(app): State<RestState>, Auth(_viewer): Auth, Id(id): Id) -> ApiResult<Json<Doctor>> {
    let doctor = doctors::get(&app.db, id).await?.ok_or(AppError::NotFound)?;
    Ok(Json(doctor))
}

/// Changes a doctor (its creator or an admin only).
#[utoipa::path(
    operation_id = "updateDoctor",
    put, path = "/api/doctors/{id}", tag = "doctors",
    params(("id" = Uuid, Path, description = "The doctor's id")),
    request_body = UpdateDoctor,
    responses(
        (status = 200, description = "The doctor as changed", body = Doctor),
        (status = 403, description = "Only the doctor's creator or an admin may change it", body = ErrorBody),
        (status = 404, description = "No such doctor", body = ErrorBody),
        (status = 409, description = "Another doctor has this licence number", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<RestState>,
    Auth(viewer): Auth,
    Id(id): Id,
    Body(input): Body<UpdateDoctor>,
) -> ApiResult<Json<Doctor>> {
    Ok(Json(doctors::update(&app.db, &viewer, id, input).await?))
}

/// Deletes a doctor and its assignments (its creator or an admin only).
#[utoipa::path(
    operation_id = "deleteDoctor",
    delete, path = "/api/doctors/{id}", tag = "doctors",
    params(("id" = Uuid, Path, description = "The doctor's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Only the doctor's creator or an admin may delete it", body = ErrorBody),
        (status = 404, description = "No such doctor", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(State(app): State<RestState>, Auth(viewer): Auth, Id(id): Id) -> ApiResult<impl IntoResponse> {
    doctors::delete(&app.db, &viewer, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
