//! GraphQL over HTTP, as its specification says: the request's parameters
//! (with `null` taken as absent), the media type the client accepts, and
//! the status and body of each answer.
//!
//! A request error (the document did not parse or validate, its variables
//! did not coerce, a limit refused it: nothing was executed) has no `data`
//! entry. Under `application/graphql-response+json` it is a 400 (a 5xx when
//! the server failed); under `application/json` it is a 200, as the
//! specification asks for clients that predate it.

use std::{collections::HashMap, str::FromStr as _, sync::LazyLock};

use async_graphql::{BatchRequest, BatchResponse, Response, ServerError, Variables};
use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::IntoResponse,
};
use headers_accept::Accept;
use mediatype::{
    MediaType, Name, Value,
    names::{APPLICATION, CHARSET, JSON},
};
use serde::{Deserialize, Serialize, ser::SerializeMap as _};

use super::{
    error,
    persisted::{Named, PersistedDocuments},
};
use crate::error::AppError;

/// What a response is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// `application/json`: what clients before the specification expect.
    Json,
    /// `application/graphql-response+json`, whose status codes say whether
    /// the request was executed.
    GraphqlResponse,
}

const GRAPHQL_RESPONSE: Name<'static> = Name::new_unchecked("graphql-response");

/// What the server can send, in its order of preference when the client
/// has none (`*/*`: `application/json`, as the specification asks). A
/// charset other than UTF-8 (in either letter case) is not on offer.
static OFFERED: LazyLock<Vec<(MediaType<'static>, ResponseType)>> = LazyLock::new(|| {
    let mut offered = Vec::new();
    for (subtype, suffix, kind) in [
        (JSON, None, ResponseType::Json),
        (GRAPHQL_RESPONSE, Some(JSON), ResponseType::GraphqlResponse),
    ] {
        offered.push((MediaType::from_parts(APPLICATION, subtype, suffix, &[]), kind));
        for charset in ["utf-8", "UTF-8"].into_iter().filter_map(Value::new) {
            let params = vec![(CHARSET, charset)];
            let mut media_type = MediaType::new(APPLICATION, subtype);
            media_type.suffix = suffix;
            media_type.params = params.into();
            offered.push((media_type, kind));
        }
    }
    offered
});

impl ResponseType {
    /// The type the request's `Accept` prefers; `application/json` when it
    /// has none (or one that does not parse), `None` when it accepts
    /// neither (406).
    pub fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let values: Vec<&str> = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| !v.trim().is_empty())
            .collect();
        if values.is_empty() {
            return Some(Self::Json);
        }
        let Ok(accept) = Accept::from_str(&values.join(",")) else {
            return Some(Self::Json);
        };
        let offered = OFFERED.iter().map(|(media_type, _)| media_type);
        let chosen = accept.negotiate(offered)?;
        OFFERED
            .iter()
            .find(|(media_type, _)| media_type == chosen)
            .map(|(_, kind)| *kind)
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Json => "application/json",
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        })
    }
}

/// The answer to an `Accept` the server cannot serve.
pub fn not_acceptable() -> axum::response::Response {
    let err = AppError::bad_input(
        "Accept",
        "the server answers with application/graphql-response+json or application/json",
    );
    shaped(
        StatusCode::NOT_ACCEPTABLE,
        ResponseType::Json,
        &serde_json::json!({ "errors": [error::request_error(&err)] }),
    )
}

/// One request's parameters in a POST body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<Variables>,
    extensions: Option<HashMap<String, async_graphql::Value>>,
    /// A persisted document's id: `"sha256:<hex>"` or the bare hash.
    document_id: Option<String>,
}

impl Params {
    /// A request to run, its document found by its hash if sent so, or
    /// what is missing from it.
    pub fn into_request(self, persisted: &PersistedDocuments) -> Result<async_graphql::Request, AppError> {
        let extensions = self.extensions.unwrap_or_default();
        let query = persisted.resolve(Named {
            query: self.query,
            document_id: self.document_id,
            persisted_query: extensions.get("persistedQuery").cloned(),
        })?;
        let mut request = async_graphql::Request::new(query);
        request.operation_name = self.operation_name;
        request.variables = self.variables.unwrap_or_default();
        request.extensions = async_graphql::Extensions(extensions);
        Ok(request)
    }
}

/// A POST body: one request (an object) or a batch (an array).
pub fn parse_body(body: &[u8], persisted: &PersistedDocuments) -> Result<BatchRequest, AppError> {
    const NOT_A_REQUEST: AppError = AppError::BadInput {
        field: "body",
        message: "must be a JSON GraphQL request: {\"query\": \"...\", \"variables\": {...}}",
    };
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => {
            let list: Vec<Params> = serde_json::from_slice(body).map_err(|_| NOT_A_REQUEST)?;
            let requests = list
                .into_iter()
                .map(|params| params.into_request(persisted))
                .collect::<Result<_, _>>()?;
            Ok(BatchRequest::Batch(requests))
        }
        Some(b'{') => {
            let params: Params = serde_json::from_slice(body).map_err(|_| NOT_A_REQUEST)?;
            Ok(BatchRequest::Single(params.into_request(persisted)?))
        }
        _ => Err(NOT_A_REQUEST),
    }
}

/// One request's parameters in a GET query string; `variables` and
/// `extensions` are JSON text.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryString {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
    document_id: Option<String>,
}

/// A GET request's parameters.
pub fn parse_query_string(query: &str, persisted: &PersistedDocuments) -> Result<async_graphql::Request, AppError> {
    let params: QueryString = serde_urlencoded::from_str(query)
        .map_err(|_| AppError::bad_input("query", "GET needs ?query=...&variables=<JSON>"))?;
    Params {
        query: params.query,
        operation_name: params.operation_name.filter(|name| !name.is_empty()),
        variables: json("variables", params.variables)?,
        extensions: json("extensions", params.extensions)?,
        document_id: params.document_id,
    }
    .into_request(persisted)
}

/// A JSON object given as text in a query string; blank is none.
fn json<T: serde::de::DeserializeOwned>(field: &'static str, text: Option<String>) -> Result<Option<T>, AppError> {
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_str(text)
            .map(Some)
            .map_err(|_| AppError::bad_input(field, "must be a JSON object")),
    }
}

/// Whether nothing of the request was executed: no data, and every error
/// is about the request rather than a field (a field's error has a path).
pub fn is_request_error(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// A response as the specification shapes it: without `data` when it
/// answers a request error.
struct Shaped<'a>(&'a Response);

impl Serialize for Shaped<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !is_request_error(self.0) {
            return self.0.serialize(serializer);
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("errors", &self.0.errors)?;
        if !self.0.extensions.is_empty() {
            map.serialize_entry("extensions", &self.0.extensions)?;
        }
        map.end()
    }
}

/// The status of a request error under `application/graphql-response+json`:
/// the server's failure (5xx) or the request's (400).
fn request_error_status(errors: &[ServerError]) -> StatusCode {
    let internal = |e: &ServerError| {
        e.extensions.as_ref().is_some_and(
            |x| matches!(x.get("code"), Some(async_graphql::Value::String(code)) if code == "INTERNAL_SERVER_ERROR"),
        )
    };
    let retryable = |e: &ServerError| e.extensions.as_ref().is_some_and(|x| x.get("retryable").is_some());
    if errors.iter().any(retryable) {
        StatusCode::SERVICE_UNAVAILABLE
    } else if errors.iter().any(internal) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// The answer to one request refused as a request error (a document the
/// server does not know, too many aliases): shaped as if it had gone
/// through execution's own checks.
pub fn request_error(kind: ResponseType, err: &AppError) -> axum::response::Response {
    let response = Response::from_errors(vec![error::request_error(err)]);
    respond(&BatchResponse::Single(response), kind)
}

/// The HTTP answer to an executed request (or batch).
pub fn respond(response: &BatchResponse, kind: ResponseType) -> axum::response::Response {
    match response {
        BatchResponse::Single(one) => {
            let status = if kind == ResponseType::GraphqlResponse && is_request_error(one) {
                request_error_status(&one.errors)
            } else {
                StatusCode::OK
            };
            shaped(status, kind, &Shaped(one))
        }
        // A batch is not in the specification: its answer is a 200 whose
        // items say each how it went.
        BatchResponse::Batch(list) => {
            let items: Vec<Shaped<'_>> = list.iter().map(Shaped).collect();
            shaped(StatusCode::OK, kind, &items)
        }
    }
}

/// A request refused before execution, as `kind` shapes errors: `status`
/// under `application/graphql-response+json`; under `application/json`
/// the same, since these are not GraphQL requests at all (no JSON body, a
/// body over the limit, a batch over the limit).
pub fn refused(status: StatusCode, kind: ResponseType, err: &AppError) -> axum::response::Response {
    shaped(
        status,
        kind,
        &serde_json::json!({ "errors": [error::request_error(err)] }),
    )
}

fn shaped(status: StatusCode, kind: ResponseType, body: &impl Serialize) -> axum::response::Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, kind.content_type())], Body::from(bytes)).into_response(),
        Err(err) => {
            AppError::internal(err).log();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(value: Option<&str>) -> Option<ResponseType> {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        ResponseType::negotiate(&headers)
    }

    #[test]
    fn the_accepted_type_is_chosen() {
        use ResponseType::{GraphqlResponse, Json};
        for (accept, expected) in [
            (None, Some(Json)),
            (Some("*/*"), Some(Json)),
            (Some("application/*"), Some(Json)),
            (Some("application/json"), Some(Json)),
            (Some("application/json; charset=utf-8"), Some(Json)),
            (Some("application/graphql-response+json"), Some(GraphqlResponse)),
            (
                Some("application/graphql-response+json; charset=UTF-8"),
                Some(GraphqlResponse),
            ),
            // Apollo Client's and urql's.
            (
                Some("application/graphql-response+json,application/json;q=0.9"),
                Some(GraphqlResponse),
            ),
            (
                Some(
                    "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed",
                ),
                Some(GraphqlResponse),
            ),
            (
                Some("application/json, application/graphql-response+json;q=0.5"),
                Some(Json),
            ),
            (Some("text/html,*/*;q=0.8"), Some(Json)),
            (Some("application/xml"), None),
            (Some("text/html"), None),
            (Some("application/json;q=0"), None),
            (Some("application/json; charset=latin1"), None),
        ] {
            assert_eq!(accepting(accept), expected, "{accept:?}");
        }
    }

    #[test]
    fn null_parameters_are_absent_and_a_missing_query_is_named() {
        let store = PersistedDocuments::default();
        let parse_body = |body: &[u8]| super::parse_body(body, &store);
        let parse_query_string = |query: &str| super::parse_query_string(query, &store);
        let request =
            parse_body(br#"{"query": "{ __typename }", "variables": null, "operationName": null, "extensions": null}"#);
        assert!(matches!(request, Ok(BatchRequest::Single(_))));
        let err = parse_body(br#"{"qeury": "{ __typename }"}"#).unwrap_err();
        assert_eq!(err.field(), Some("query"));
        for bad in [
            r#"{"query": 0}"#,
            r#"{"query": ["{ a }"]}"#,
            r#"{"query": "{ a }", "variables": "{}"}"#,
            r#"{"query": "{ a }", "variables": [1]}"#,
            r#"{"query": "{ a }", "extensions": false}"#,
            r#"{"query": "{ a }", "operationName": {}}"#,
            r#"{ "not a JSON"#,
            "",
            "null",
        ] {
            assert!(parse_body(bad.as_bytes()).is_err(), "{bad}");
        }
        let get =
            parse_query_string("query=query%20Q(%24n%3A%20String!)%20%7B%20a%20%7D&variables=%7B%22n%22%3A%22x%22%7D")
                .unwrap();
        assert_eq!(get.variables.len(), 1);
        assert!(parse_query_string("query=%7Ba%7D&variables=%5B1%5D").is_err());
        assert!(parse_query_string("variables=%7B%7D").is_err());
    }
}
