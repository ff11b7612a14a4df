//! How errors reach REST clients: `{"error": {"code", "message", "field"}}`
//! with the status of `AppError`'s table, and `WWW-Authenticate: Bearer` on
//! 401.

use axum::{
    Json,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;

/// The error of a REST handler: an `AppError` rendered in the REST shape.
#[derive(Debug)]
pub struct ApiError(pub AppError);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        Self(err)
    }
}

/// Every error answer of the REST API.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The same codes as GraphQL's `extensions.code`.
    #[schema(value_type = ErrorCode)]
    pub code: &'static str,
    /// For people; never holds request data.
    pub message: String,
    /// The request field the error is about, where there is one.
    #[schema(value_type = Option<String>)]
    pub field: Option<&'static str>,
}

/// The error codes (the contract's GraphQL `extensions.code` values).
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(dead_code)]
pub enum ErrorCode {
    Unauthenticated,
    /// A login of an account with MFA on, without `totpCode`.
    MfaRequired,
    Forbidden,
    NotFound,
    BadUserInput,
    Conflict,
    TooManyRequests,
    InternalServerError,
}

impl ErrorBody {
    pub fn of(err: &AppError) -> Self {
        Self {
            error: ErrorDetail {
                code: err.code(),
                message: err.to_string(),
                field: err.field(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        err.log();
        let mut response = (err.status(), Json(ErrorBody::of(&err))).into_response();
        let headers = response.headers_mut();
        if matches!(
            err,
            AppError::Unauthenticated | AppError::BadCredentials(_) | AppError::MfaRequired
        ) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = err.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failure_body_carries_this_shape() {
        for err in [AppError::Unavailable, AppError::bad_input("name", "must not be empty")] {
            let body = serde_json::to_value(ErrorBody::of(&err)).unwrap();
            assert_eq!(body["error"], err.failure_body()["error"]);
        }
    }
}
