//! HTTP plumbing shared by every route: the middleware stack, health checks,
//! metrics, and reading the bearer token and request id.

pub mod client;
pub mod health;
pub mod metrics;

use std::time::Duration;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, OnResponse as _, TraceLayer},
};
use tracing::Level;

use crate::{app::AppState, config::CorsOrigins, error::AppError, telemetry};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The request's id (set by the middleware on every request).
pub fn request_id(headers: &HeaderMap) -> Option<&str> {
    headers.get(REQUEST_ID).and_then(|v| v.to_str().ok())
}

/// Whether the request declares a JSON body.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json") || v.eq_ignore_ascii_case("application/graphql-response+json")
        })
        .unwrap_or(false)
}

/// A client's request id is kept only if it is short and plain.
fn acceptable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=128).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

async fn drop_unacceptable_request_id(mut req: Request, next: Next) -> Response {
    if req.headers().get(REQUEST_ID).is_some_and(|v| !acceptable_request_id(v)) {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
}

async fn count_response(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    state.metrics.observe_http(&route, response.status().as_u16());
    response
}

/// Wraps the routes in the middleware every response goes through.
pub fn with_middleware(router: Router<AppState>, state: &AppState) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            // The matched route, never the raw URI: query strings may hold data.
            let path = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", |p| p.as_str());
            let id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if matches!(path, "/healthz" | "/readyz" | "/metrics") {
                // Probes and scrapes, every few seconds: logged, not traced.
                return tracing::info_span!(target: telemetry::UNTRACED, "request", method = %req.method(), path, request_id = id);
            }
            // The trace's fields stay empty, and out of the logs, unless
            // traces are on.
            let span = tracing::info_span!(
                "request",
                method = %req.method(),
                path,
                request_id = id,
                trace_id = tracing::field::Empty,
                otel.name = tracing::field::Empty,
                otel.kind = tracing::field::Empty,
            );
            telemetry::follow_caller(&span, req.headers(), req.method().as_str(), path);
            span
        })
        .on_request(())
        .on_response(|response: &Response, latency: Duration, span: &tracing::Span| {
            DefaultOnResponse::new()
                .level(Level::INFO)
                .on_response(response, latency, span);
            telemetry::record_status(span, response.status().as_u16());
        });
    router
        .layer(middleware::from_fn_with_state(state.trusted_proxy_hops, client::attach))
        .layer(middleware::from_fn_with_state(state.clone(), count_response))
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(drop_unacceptable_request_id))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                // Responses may carry patient data: no cache may keep them,
                // unless a handler says otherwise (GraphiQL's assets).
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ))
                .layer(middleware::map_response(explain_bare_failures))
                .layer(CatchPanicLayer::custom(|_| internal_error_response()))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    state.limits.request_timeout,
                ))
                .layer(cors(&state.cors))
                .layer(DefaultBodyLimit::max(state.limits.max_body_bytes)),
        )
        .with_state(state.clone())
}

fn internal_error_response() -> Response {
    let err = AppError::internal(anyhow::anyhow!("a handler panicked"));
    err.log();
    failure_response(&err)
}

/// The answer to a request that failed before any transport could shape it
/// (a panic, a timeout).
fn failure_response(err: &AppError) -> Response {
    let mut response = (err.status(), axum::Json(err.failure_body())).into_response();
    if let Some(seconds) = err.retry_after() {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The answer to an API request refused because `MAX_CONCURRENT_REQUESTS`
/// are being served: at once, 503 with `Retry-After`, retryable.
pub async fn overloaded(_: axum::BoxError) -> Response {
    failure_response(&AppError::Busy)
}

/// Gives a body to the bodiless failures of the middleware (the timeout's 503).
async fn explain_bare_failures<B>(response: axum::http::Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let bare = !response.headers().contains_key(header::CONTENT_TYPE);
    if bare && response.status() == StatusCode::SERVICE_UNAVAILABLE {
        failure_response(&AppError::Unavailable)
    } else {
        response.map(axum::body::Body::new)
    }
}

fn cors(origins: &CorsOrigins) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            REQUEST_ID,
            HeaderName::from_static(crate::idempotency::HEADER),
            // W3C trace context, from browser clients that trace.
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("tracestate"),
        ])
        .expose_headers([REQUEST_ID])
        .max_age(Duration::from_secs(600));
    match origins {
        CorsOrigins::None => layer.allow_origin(AllowOrigin::list([])),
        CorsOrigins::Any => layer.allow_origin(AllowOrigin::any()),
        CorsOrigins::List(list) => layer.allow_origin(AllowOrigin::list(
            list.iter().filter_map(|o| HeaderValue::from_str(o).ok()),
        )),
    }
}

/// The answer to any path that is not served.
pub async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": {"code": "NOT_FOUND", "message": "no such path"}})),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc.def"));
        assert_eq!(bearer_token(&h), Some("abc.def"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  xyz"));
        assert_eq!(bearer_token(&h), Some("xyz"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), None);
    }

    #[test]
    fn only_plain_request_ids_are_kept() {
        assert!(acceptable_request_id(&HeaderValue::from_static("abc-123_x.y:z")));
        assert!(!acceptable_request_id(&HeaderValue::from_static("")));
        assert!(!acceptable_request_id(&HeaderValue::from_static("has space")));
        assert!(!acceptable_request_id(
            &HeaderValue::from_str(&"a".repeat(129)).unwrap()
        ));
    }
}
