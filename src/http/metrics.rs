//! `/metrics`: Prometheus text with GraphQL request counts and latencies by
//! operation type, HTTP responses by route and status class, and pool use.

use axum::{extract::State, http::header, response::IntoResponse};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::app::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: &'static str,
}

pub struct Metrics {
    registry: Registry,
    graphql_requests: Family<OperationLabels, Counter>,
    graphql_latency: Family<OperationLabels, Histogram>,
    http_responses: Family<HttpLabels, Counter>,
    pool_max: Gauge,
    pool_size: Gauge,
    pool_in_use: Gauge,
    pool_waiting: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let graphql_requests = Family::<OperationLabels, Counter>::default();
        let graphql_latency = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        let http_responses = Family::<HttpLabels, Counter>::default();
        registry.register(
            "graphql_requests",
            "GraphQL operations executed, by operation type",
            graphql_requests.clone(),
        );
        registry.register(
            "graphql_request_duration_seconds",
            "GraphQL operation latency, by operation type",
            graphql_latency.clone(),
        );
        registry.register(
            "http_responses",
            "HTTP responses, by route and status class",
            http_responses.clone(),
        );
        let (pool_max, pool_size, pool_in_use, pool_waiting) =
            (Gauge::default(), Gauge::default(), Gauge::default(), Gauge::default());
        registry.register("db_pool_max_connections", "Pool capacity", pool_max.clone());
        registry.register("db_pool_connections", "Connections open in the pool", pool_size.clone());
        registry.register(
            "db_pool_connections_in_use",
            "Connections lent out",
            pool_in_use.clone(),
        );
        registry.register(
            "db_pool_waiting",
            "Requests waiting for a connection",
            pool_waiting.clone(),
        );
        Self {
            registry,
            graphql_requests,
            graphql_latency,
            http_responses,
            pool_max,
            pool_size,
            pool_in_use,
            pool_waiting,
        }
    }

    pub fn observe_http(&self, route: &str, status: u16) {
        let status = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_responses
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    fn observe_operation(&self, operation: &'static str, seconds: f64) {
        let labels = OperationLabels { operation };
        self.graphql_requests.get_or_create(&labels).inc();
        self.graphql_latency.get_or_create(&labels).observe(seconds);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub async fn handler(State(state): State<AppState>) -> impl IntoResponse {
    let pool = state.db.status();
    let metrics = &state.metrics;
    let as_gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    metrics.pool_max.set(as_gauge(pool.max_size));
    metrics.pool_size.set(as_gauge(pool.size));
    metrics.pool_in_use.set(as_gauge(pool.in_use));
    metrics.pool_waiting.set(as_gauge(pool.waiting));
    let mut body = String::new();
    if let Err(err) = prometheus_client::encoding::text::encode(&mut body, &metrics.registry) {
        tracing::error!(error = %err, "could not encode metrics");
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

/// The type of the operation a GraphQL document would run (`query`,
/// `mutation`, `subscription`), found by a light scan of the document's top
/// level rather than a second parse; `invalid` when there is none. For the
/// metrics' labels only: execution parses the document properly.
pub fn operation_kind(document: &str, operation_name: Option<&str>) -> &'static str {
    let bytes = document.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut first: Option<&'static str> = None;
    let mut pending: Option<&'static str> = None;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                let block = bytes[i..].starts_with(b"\"\"\"");
                i += if block { 3 } else { 1 };
                while i < bytes.len() {
                    if block && bytes[i..].starts_with(b"\"\"\"") {
                        i += 2;
                        break;
                    }
                    if !block && bytes[i] == b'\\' {
                        i += 1;
                    } else if !block && bytes[i] == b'"' {
                        break;
                    }
                    i += 1;
                }
            }
            b'{' => {
                if depth == 0 {
                    // An anonymous query, or the body of a named definition.
                    let kind = pending.take().unwrap_or("query");
                    if kind != "fragment" && operation_name.is_none() && first.is_none() {
                        first = Some(kind);
                    }
                }
                depth += 1;
            }
            b'}' => depth = depth.saturating_sub(1),
            c if depth == 0 && (c.is_ascii_alphabetic() || c == b'_') => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &document[start..i];
                match word {
                    "query" | "mutation" | "subscription" | "fragment" if pending.is_none() => {
                        pending = Some(match word {
                            "query" => "query",
                            "mutation" => "mutation",
                            "subscription" => "subscription",
                            _ => "fragment",
                        });
                        // The operation's name, if it has one.
                        let rest = &document[i..];
                        let name: String = rest
                            .trim_start()
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if let (Some(kind), Some(wanted)) = (pending, operation_name)
                            && kind != "fragment"
                            && name == wanted
                        {
                            return kind;
                        }
                    }
                    _ => {}
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    first.unwrap_or("invalid")
}

impl Metrics {
    /// Records one executed GraphQL operation.
    pub fn observe_graphql(&self, operation: &'static str, seconds: f64) {
        self.observe_operation(operation, seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::operation_kind;

    #[test]
    fn operation_kinds() {
        assert_eq!(operation_kind("{ me { id } }", None), "query");
        assert_eq!(
            operation_kind("  # comment {\n mutation M { logout(refreshToken: \"{\") }", None),
            "mutation"
        );
        assert_eq!(
            operation_kind("fragment F on User { id } query Q { me { ...F } }", None),
            "query"
        );
        assert_eq!(
            operation_kind(
                "query A { me { id } } mutation B { logout(refreshToken: \"x\") }",
                Some("B")
            ),
            "mutation"
        );
        assert_eq!(
            operation_kind("subscription { mappingEvents { kind } }", None),
            "subscription"
        );
        assert_eq!(operation_kind("", None), "invalid");
        assert_eq!(operation_kind("\"\"\" a { \"\"\" mutation { x }", None), "mutation");
    }
}
