//! `/api/auth`: register, log in, refresh and log out, as the original REST
//! clients do.

use axum::{
    Extension, Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    RestState,
    error::{ApiResult, ErrorBody},
    extract::Body,
};
use crate::{
    accounts::{AuthSession, Registration, User},
    http::{client::Client, request_id},
};

/// Returned by register, login and refresh: GraphQL's `AuthPayload` plus
/// `token`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AuthPayload)]
pub struct AuthJson {
    /// JWT; send it as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// The same as `accessToken`, for the original clients.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque and single-use: `/api/auth/refresh` returns a new one and
    /// retires this one.
    pub refresh_token: String,
    pub user: User,
}

impl From<AuthSession> for AuthJson {
    fn from(s: AuthSession) -> Self {
        Self {
            token: s.access_token.clone(),
            access_token: s.access_token,
            token_type: "Bearer",
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
            user: s.user,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterBody {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(max_length = 254)]
    pub email: String,
    /// At least 8 characters and at most 72 bytes in UTF-8 (bcrypt's limit),
    /// without NUL.
    #[schema(min_length = 8, max_length = 72)]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginBody {
    #[schema(max_length = 254)]
    pub email: String,
    pub password: String,
    /// The current 6-digit code of the user's authenticator app, or one
    /// unused recovery code; needed when the user has turned MFA on.
    #[schema(max_length = 64)]
    pub totp_code: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// Creates an account and signs it in.
#[utoipa::path(
    operation_id = "register",
    post, path = "/api/auth/register", tag = "auth",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "The new account, signed in", body = AuthJson),
        (status = 409, description = "An account with this email exists", body = ErrorBody),
        (status = 429, description = "Too many attempts from this client address (`AUTH_RATE_LIMIT`)", body = ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    )
)]
pub async fn register(
    State(app): State<RestState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Body(body): Body<RegisterBody>,
) -> ApiResult<impl IntoResponse> {
    let registration = Registration {
        name: body.name,
        email: body.email,
        password: body.password,
    };
    let session = app
        .accounts
        .register(registration, &client, request_id(&headers))
        .await?;
    Ok((StatusCode::CREATED, Json(AuthJson::from(session))))
}

/// Signs in with email and password.
#[utoipa::path(
    operation_id = "login",
    post, path = "/api/auth/login", tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = AuthJson),
        (status = 401, description = "Wrong email or password, or a wrong code; `MFA_REQUIRED` when the account has MFA on and no `totpCode` was sent", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 429, description = "Too many failed logins for this email, or too many attempts from this client address (`AUTH_RATE_LIMIT`); try again later", body = ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    )
)]
pub async fn login(
    State(app): State<RestState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Body(body): Body<LoginBody>,
) -> ApiResult<Json<AuthJson>> {
    let session = app
        .accounts
        .login(
            &body.email,
            &body.password,
            body.totp_code.as_deref(),
            &client,
            request_id(&headers),
        )
        .await?;
    Ok(Json(session.into()))
}

/// Exchanges a refresh token for a new pair. Reusing a retired refresh token
/// revokes every refresh token of its user.
#[utoipa::path(
    operation_id = "refreshToken",
    post, path = "/api/auth/refresh", tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new pair", body = AuthJson),
        (status = 401, description = "The refresh token is unknown, expired, retired or revoked", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 429, description = "Too many attempts from this client address (`AUTH_RATE_LIMIT`)", body = ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    )
)]
pub async fn refresh(
    State(app): State<RestState>,
    Extension(client): Extension<Client>,
    Body(body): Body<RefreshBody>,
) -> ApiResult<Json<AuthJson>> {
    Ok(Json(app.accounts.refresh(&body.refresh_token, &client).await?.into()))
}

/// Revokes a refresh token (whether or not it was live).
#[utoipa::path(
    operation_id = "logout",
    post, path = "/api/auth/logout", tag = "auth",
    request_body = RefreshBody,
    responses((status = 204, description = "The token is no longer usable"))
)]
pub async fn logout(State(app): State<RestState>, Body(body): Body<RefreshBody>) -> ApiResult<impl IntoResponse> {
    app.accounts.logout(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}
