//! The REST compatibility API under `/api`: the original product's endpoints,
//! served by the same service functions as GraphQL. Handlers decode, call and
//! encode; every route is registered through its `#[utoipa::path]`, so the
//! OpenAPI document (`GET /api/openapi.json`, browsable at `/api/docs/`)
//! cannot leave one out.

pub mod auth;
pub mod doctors;
pub mod error;
pub mod extract;
pub mod mappings;
pub mod patients;

use axum::{
    Json, Router,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::{
        self, RefOr,
        response::{ResponseBuilder, Responses},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};
use utoipa_axum::{router::OpenApiRouter, routes};

use self::{error::ErrorBody, extract::PageParams};
use crate::{
    accounts::Accounts,
    db::Db,
    doctors::LICENSE_NUMBER_PATTERN,
    input::{
        self, EMAIL_PATTERN, NAME_PATTERN, OPTIONAL_EMAIL_PATTERN, PHONE_PATTERN, TEXT_PATTERN, TOTP_CODE_PATTERN,
    },
    paging::{CREATED_AT_CURSOR_PATTERN, NAME_CURSOR_PATTERN, Page},
};

pub const OPENAPI_PATH: &str = "/api/openapi.json";
pub const DOCS_PATH: &str = "/api/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "healthcare-api REST compatibility API",
        description = "The original REST API of the healthcare records service. Send \
            `Authorization: Bearer <token>` from `/api/auth/login` or `/api/auth/register`. \
            Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "patients", description = "The caller's patient records"),
        (name = "doctors", description = "The shared directory of doctors"),
        (name = "mappings", description = "Doctors assigned to patients"),
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// What the REST handlers reach: the database and the accounts service
/// (GraphQL's schemas and the subscriptions are not theirs).
#[derive(Clone)]
pub struct RestState {
    pub db: Db,
    pub accounts: Accounts,
}

/// The `/api` routes and the OpenAPI document that describes them.
pub fn router() -> (Router<RestState>, openapi::OpenApi) {
    let (router, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(patients::create, patients::list))
        .routes(routes!(patients::show, patients::update, patients::delete))
        .routes(routes!(doctors::create, doctors::list))
        .routes(routes!(doctors::show, doctors::update, doctors::delete))
        .routes(routes!(mappings::create, mappings::list))
        .routes(routes!(mappings::doctors_of_patient, mappings::delete))
        .split_for_parts();
    api.info.license = None;
    add_common_responses(&mut api);
    if let Err(missing) = add_patterns(&mut api, chrono::Utc::now().date_naive()) {
        tracing::error!(missing, "the OpenAPI document lacks a field that has a pattern");
    }
    (router, api)
}

/// Which body field follows which rule of `input` (and friends). The rules
/// are written once, next to their parsers, as ECMA 262 patterns that unit
/// tests hold equal to the parsers; here they are attached to the document.
const BODY_PATTERNS: &[(&str, &[(&str, &str)])] = &[
    (
        "RegisterBody",
        &[
            ("name", NAME_PATTERN),
            ("email", EMAIL_PATTERN),
            ("password", TEXT_PATTERN),
        ],
    ),
    (
        "LoginBody",
        &[("email", EMAIL_PATTERN), ("totpCode", TOTP_CODE_PATTERN)],
    ),
    ("CreatePatientBody", PATIENT_PATTERNS),
    ("UpdatePatientBody", PATIENT_PATTERNS),
    ("CreateDoctorBody", DOCTOR_PATTERNS),
    ("UpdateDoctorBody", DOCTOR_PATTERNS),
];

const PATIENT_PATTERNS: &[(&str, &str)] = &[
    ("name", NAME_PATTERN),
    ("email", OPTIONAL_EMAIL_PATTERN),
    ("phone", PHONE_PATTERN),
    ("address", TEXT_PATTERN),
    ("medicalHistory", TEXT_PATTERN),
];

const DOCTOR_PATTERNS: &[(&str, &str)] = &[
    ("name", NAME_PATTERN),
    ("specialization", NAME_PATTERN),
    ("email", OPTIONAL_EMAIL_PATTERN),
    ("phone", PHONE_PATTERN),
    ("licenseNumber", LICENSE_NUMBER_PATTERN),
];

/// The query parameters with a pattern, by path.
const PARAMETER_PATTERNS: &[(&str, &str, &str)] = &[
    ("/api/patients", "after", CREATED_AT_CURSOR_PATTERN),
    ("/api/patients", "search", TEXT_PATTERN),
    ("/api/doctors", "after", NAME_CURSOR_PATTERN),
    ("/api/doctors", "search", TEXT_PATTERN),
    ("/api/mappings", "after", CREATED_AT_CURSOR_PATTERN),
];

/// Sets each pattern, and the birth-date rule as of `today`; the error names
/// the first field the document lacks.
fn add_patterns(api: &mut openapi::OpenApi, today: chrono::NaiveDate) -> Result<(), String> {
    let birth_dates = input::birth_date_pattern(today);
    let schemas = &mut api.components.get_or_insert_with(Default::default).schemas;
    let mut set = |schema: &str, property: &str, pattern: &str| -> Result<(), String> {
        let missing = || format!("{schema}.{property}");
        let Some(RefOr::T(openapi::Schema::Object(object))) = schemas.get_mut(schema) else {
            return Err(missing());
        };
        let Some(RefOr::T(openapi::Schema::Object(field))) = object.properties.get_mut(property) else {
            return Err(missing());
        };
        field.pattern = Some(pattern.to_owned());
        Ok(())
    };
    for (schema, fields) in BODY_PATTERNS {
        for (property, pattern) in *fields {
            set(schema, property, pattern)?;
        }
    }
    for schema in ["CreatePatientBody", "UpdatePatientBody"] {
        set(schema, "dateOfBirth", &birth_dates)?;
    }
    for (path, name, pattern) in PARAMETER_PATTERNS {
        let missing = || format!("{path} ?{name}");
        let operation = api
            .paths
            .paths
            .get_mut(*path)
            .and_then(|item| item.get.as_mut())
            .ok_or_else(missing)?;
        let parameter = operation
            .parameters
            .iter_mut()
            .flatten()
            .find_map(|p| match p {
                RefOr::T(p) if p.name == *name => Some(p),
                _ => None,
            })
            .ok_or_else(missing)?;
        let Some(RefOr::T(openapi::Schema::Object(schema))) = parameter.schema.as_mut() else {
            return Err(missing());
        };
        schema.pattern = Some((*pattern).to_owned());
    }
    Ok(())
}

/// The answers any operation can give besides its own: 400 for bad input,
/// 401 where a token is needed, 413 and 415 where there is a body, and 500
/// and 503 when the server or its database fails.
fn add_common_responses(api: &mut openapi::OpenApi) {
    let error = |description: &str, challenge: bool| -> RefOr<openapi::Response> {
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(openapi::Ref::from_schema_name(ErrorBody::name()))))
                .build(),
        );
        if challenge {
            response = response.header(
                "WWW-Authenticate",
                openapi::HeaderBuilder::new()
                    .schema(Some(openapi::ObjectBuilder::new().schema_type(openapi::Type::String)))
                    .description(Some("`Bearer`"))
                    .build(),
            );
        }
        response.build().into()
    };
    for item in api.paths.paths.values_mut() {
        let operations = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.delete.as_mut(),
        ];
        for operation in operations.into_iter().flatten() {
            let has_body = operation.request_body.is_some();
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let responses: &mut Responses = &mut operation.responses;
            let mut add = |status: &str, response: RefOr<openapi::Response>| {
                responses.responses.entry(status.to_owned()).or_insert(response);
            };
            add("400", error("Bad input: the `field` names what is wrong", false));
            if secured {
                add("401", error("No valid access token", true));
            }
            if has_body {
                add("413", error("The request body is over the size limit", false));
                add(
                    "415",
                    error("The request body is not declared as `application/json`", false),
                );
            }
            add("500", error("An internal error (logged with the request id)", false));
            add("503", error("The database did not answer in time; try again", false));
        }
    }
}

/// 201 with the new record and its `Location`.
pub fn created(location: &str, body: impl Serialize) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A page as a JSON array, with `Link: <...>; rel="next"` while more rows
/// exist.
pub fn page<T: Serialize>(path: &str, params: &PageParams, page: Page<T>) -> Response {
    let next = page
        .has_next
        .then(|| page.rows.last().map(|(cursor, _)| cursor.encode()))
        .flatten();
    let rows: Vec<T> = page.rows.into_iter().map(|(_, row)| row).collect();
    let mut response = Json(rows).into_response();
    if let Some(cursor) = next {
        let limit = params.limit.get().to_string();
        let mut query: Vec<(&str, &str)> = vec![("limit", &limit), ("after", &cursor)];
        let search = params.search.as_ref().map(|s| s.as_str().to_owned());
        if let Some(search) = &search {
            query.push(("search", search));
        }
        if let Ok(query) = serde_urlencoded::to_string(&query)
            && let Ok(value) = HeaderValue::from_str(&format!("<{path}?{query}>; rel=\"next\""))
        {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_finds_its_field() {
        let (_, mut api) = router();
        assert_eq!(add_patterns(&mut api, chrono::Utc::now().date_naive()), Ok(()));
    }
}
