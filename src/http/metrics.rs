//! `/metrics`: Prometheus text with GraphQL request counts and latencies by
//! operation type, HTTP responses by route and status class, pool use, and
//! how far the audit seal is behind.

use std::sync::{Arc, atomic::AtomicU64};

use async_graphql::parser::types::OperationType;
use axum::{extract::State, http::header, response::IntoResponse};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::{app::AppState, audit::seal::SealWatch};

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
    subscriptions: Gauge,
    /// What this server's sealer last saw waiting.
    pub audit_seal: Arc<SealWatch>,
    unsealed_age: Gauge<f64, AtomicU64>,
    unsealed_events: Gauge,
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
        let subscriptions = Gauge::default();
        registry.register(
            "graphql_subscriptions",
            "Subscriptions running on this server",
            subscriptions.clone(),
        );
        let unsealed_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "audit_oldest_unsealed_event_age_seconds",
            "Age of the oldest committed audit event not sealed yet (0 when none waits), as of this server's last look",
            unsealed_age.clone(),
        );
        let unsealed_events = Gauge::default();
        registry.register(
            "audit_unsealed_events",
            "Committed audit events not sealed yet, as of this server's last look",
            unsealed_events.clone(),
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
            subscriptions,
            audit_seal: Arc::default(),
            unsealed_age,
            unsealed_events,
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

    /// Records one executed GraphQL operation, of the type that
    /// `graphql::documents::operation_type` found (`None`: a document that
    /// runs no operation).
    pub fn observe_graphql(&self, operation: Option<OperationType>, seconds: f64) {
        let operation = match operation {
            Some(OperationType::Query) => "query",
            Some(OperationType::Mutation) => "mutation",
            Some(OperationType::Subscription) => "subscription",
            None => "invalid",
        };
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
    metrics.subscriptions.set(as_gauge(state.notifications.receivers()));
    metrics
        .unsealed_age
        .set(metrics.audit_seal.oldest_pending_age(chrono::Utc::now()));
    metrics.unsealed_events.set(metrics.audit_seal.pending());
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
