//! Extractors that turn a request into checked values or an `ApiError` in the
//! REST shape: the caller (`Auth`), a JSON body (`Body`), a record id (`Id`)
//! and the paging parameters (`PageParams`).

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{StatusCode, request::Parts},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_aux::serde_introspection::serde_introspect;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{RestState, error::ApiError};
use crate::{
    error::AppError,
    http::{bearer_token, is_json, request_id},
    idempotency::IdempotencyKey,
    input::{SearchTerm, parse_id},
    paging::{Cursor, Limit},
    viewer::Viewer,
};

/// The caller, proven by `Authorization: Bearer <accessToken>`.
pub struct Auth(pub Viewer);

impl FromRequestParts<RestState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &RestState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(AppError::Unauthenticated)?;
        let viewer = state
            .accounts
            .authenticate(token)
            .map_err(|_| AppError::Unauthenticated)?;
        Ok(Self(viewer.with_request_id(request_id(&parts.headers))))
    }
}

/// A JSON request body: 415 unless declared as JSON, 413 over the size limit,
/// 400 naming the field that does not fit.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(AppError::NotJson.into());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge
            } else {
                AppError::bad_input("body", "the request body could not be read")
            }
        })?;
        parse_body(&bytes).map(Self).map_err(ApiError)
    }
}

fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // serde's derived structs also take a JSON array of their fields in
    // order (`[]` is an update that changes nothing); a body is an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AppError::bad_input("body", "must be one JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        // The body's field names, as `T`'s derived `Deserialize` declares
        // them: an error names one of these, never the client's text.
        body_error(serde_introspect::<T>(), &path, err.inner())
    })?;
    deserializer
        .end()
        .map_err(|_| AppError::bad_input("body", "must be one JSON object"))?;
    Ok(value)
}

/// The name between backquotes in serde's "missing field `x`" and
/// "unknown field `x`, expected ...": serde_json gives these two only as
/// text (the path of either is the body itself).
fn quoted<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.split_once(prefix)?.1;
    let rest = rest.strip_prefix('`')?;
    Some(rest.split_once('`')?.0)
}

fn body_error(fields: &'static [&'static str], path: &str, err: &serde_json::Error) -> AppError {
    let known = |name: &str| fields.iter().copied().find(|f| *f == name);
    if err.is_syntax() || err.is_eof() || err.is_io() {
        return AppError::bad_input("body", "is not valid JSON");
    }
    let message = err.to_string();
    if let Some(name) = quoted(&message, "missing field ") {
        return AppError::bad_input(known(name).unwrap_or("body"), "is required");
    }
    if quoted(&message, "unknown field ").is_some() {
        // Never one of ours: the body, since the name is the client's text.
        return AppError::bad_input("body", "is not a field of this request");
    }
    match known(path) {
        Some(field) => AppError::bad_input(field, "has the wrong type or an unknown value"),
        None => AppError::bad_input("body", "must be a JSON object with the documented fields"),
    }
}

/// A record id from the path: a UUID, or 400 on `id`.
pub struct Id(pub Uuid);

/// The request's `Idempotency-Key`, if it sent one (see `crate::idempotency`).
pub struct Idempotency(pub Option<IdempotencyKey>);

/// `Idempotency-Key`, as the REST API's document describes it.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyHeader {
    /// Makes the create safe to send again: the same key from the same user
    /// within 24 hours answers with what the first request made (201 again,
    /// no second record); with a different body it is 409. A UUID is a good
    /// key.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = r"^[!#-\[\]-~]([ !#-\[\]-~]*[!#-\[\]-~])?$"
    )]
    idempotency_key: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self(IdempotencyKey::from_headers(&parts.headers)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::bad_input("id", "is not a valid id"))?;
        Ok(Self(parse_id("id", &raw)?))
    }
}

/// The query of a list: `limit` (1..100, default 50), `after` (a cursor from
/// the previous page's `Link` header) and, where a list supports it,
/// `search`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Rows per page: 1 to 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<String>,
    /// The cursor of the next page, as given in the `Link` header.
    #[param(max_length = 1200)]
    pub after: Option<String>,
}

/// `ListQuery` with `search`: a case-insensitive substring of the name.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Rows per page: 1 to 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<String>,
    /// The cursor of the next page, as given in the `Link` header.
    #[param(max_length = 1200)]
    pub after: Option<String>,
    /// Matches names case-insensitively by substring; `%` and `_` are literal.
    #[param(max_length = 200)]
    pub search: Option<String>,
}

pub const DEFAULT_LIMIT: i64 = 50;

/// Checked paging parameters.
pub struct PageParams {
    pub limit: Limit,
    pub after: Option<String>,
    pub search: Option<SearchTerm>,
}

impl PageParams {
    fn parse(limit: Option<&str>, after: Option<String>, search: Option<&str>) -> Result<Self, AppError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<i64>()
                .map_err(|_| AppError::bad_input("limit", "must be from 1 to 100"))?,
        };
        Ok(Self {
            limit: Limit::parse("limit", limit)?,
            after,
            search: search.map(|s| SearchTerm::parse("search", s)).transpose()?.flatten(),
        })
    }

    /// The `after` cursor, decoded for a list in `order` (`None`: by creation).
    pub fn cursor(&self, order: Option<crate::paging::Order>) -> Result<Option<Cursor>, AppError> {
        self.after
            .as_deref()
            .map(|raw| Cursor::decode("after", raw, order))
            .transpose()
    }
}

fn bad_query() -> AppError {
    AppError::bad_input("query", "has a parameter given twice or not as text")
}

/// Paging parameters of a list without search.
pub struct Paging(pub PageParams);

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(q) = Query::<ListQuery>::from_request_parts(parts, state)
            .await
            .map_err(|_| bad_query())?;
        Ok(Self(PageParams::parse(q.limit.as_deref(), q.after, None)?))
    }
}

/// Paging parameters of a list with `search`.
pub struct Searching(pub PageParams);

impl<S: Send + Sync> FromRequestParts<S> for Searching {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(q) = Query::<SearchQuery>::from_request_parts(parts, state)
            .await
            .map_err(|_| bad_query())?;
        Ok(Self(PageParams::parse(
            q.limit.as_deref(),
            q.after,
            q.search.as_deref(),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        date_of_birth: Option<chrono::NaiveDate>,
    }

    #[test]
    fn a_body_is_an_object_not_an_array() {
        for body in ["[]", r#"["Ann", null]"#, " [ ]", "null", "\"Ann\""] {
            assert_eq!(field_of(body), "body", "{body}");
        }
        assert!(parse_body::<Sample>(br#" {"name": "Ann"}"#).is_ok());
    }

    fn field_of(body: &str) -> &'static str {
        parse_body::<Sample>(body.as_bytes()).unwrap_err().field().unwrap()
    }

    #[test]
    fn body_errors_name_the_field_without_echoing_it() {
        assert_eq!(field_of("{"), "body");
        assert_eq!(field_of("[]"), "body");
        assert_eq!(field_of("{}"), "name");
        assert_eq!(field_of(r#"{"name": 5}"#), "name");
        assert_eq!(field_of(r#"{"name": "a", "dateOfBirth": "x"}"#), "dateOfBirth");
        assert_eq!(field_of(r#"{"name": "a", "nope": 1}"#), "body");
        assert_eq!(field_of(r#"{"name": "a", "dateOfBirth": 1}"#), "dateOfBirth");
        assert_eq!(field_of(r#"{"name": "a"} {}"#), "body");
        // A field of another request is not one of this one's.
        assert_eq!(field_of(r#"{"name": "a", "email": 1}"#), "body");
        assert_eq!(serde_introspect::<Sample>(), ["name", "dateOfBirth"]);
        let err = parse_body::<Sample>(br#"{"name": "a", "secret-value": 1}"#).unwrap_err();
        assert!(!err.to_string().contains("secret-value"));
    }
}
