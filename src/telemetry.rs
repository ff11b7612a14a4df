//! Logging: pretty for people, JSON for machines. Traces over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set: a span
//! per request, per GraphQL operation and per SQL statement. Spans carry
//! ids, routes, codes, durations, operation names and SQL text with its
//! placeholders only: never names, emails, tokens, variables or bind values.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use opentelemetry::trace::{Status, TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, filter::filter_fn, fmt, prelude::*};

use crate::config::LogFormat;

/// The target of the spans that only traces carry (GraphQL operations, SQL
/// statements): never logged, and disabled where they are made unless
/// traces are on, so that they cost nothing then.
pub const TRACE_ONLY: &str = "healthcare_api::traces";

/// The target of spans that are logged but never traced (health probes).
pub const UNTRACED: &str = "healthcare_api::untraced";

static TRACES_ON: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (set once, at start-up).
pub fn traces_on() -> bool {
    TRACES_ON.load(Ordering::Relaxed)
}

/// Whether work done now belongs to a traced span: a request's, not a
/// probe's, nor a background task's (the audit sealer's).
pub fn in_traced_span() -> bool {
    traces_on() && Span::current().metadata().is_some_and(|meta| meta.target() != UNTRACED)
}

/// What `init` set up; `shutdown` exports the spans still waiting.
#[must_use]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            tracing::warn!(error = %err, "the last spans could not all be exported");
        }
    }
}

/// Installs the global subscriber, with the OTLP exporter when `traces` is
/// set; a second call (as in tests) installs nothing.
pub fn init(format: LogFormat, filter: &str, traces: bool) -> anyhow::Result<Telemetry> {
    // The driver's debug logs print statement parameters, which may be
    // patient data: never below info, whatever RUST_LOG says.
    let filter = format!("{filter},tokio_postgres=info,postgres_protocol=info,{TRACE_ONLY}=off");
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    if !traces {
        let registry = tracing_subscriber::registry().with(filter);
        let _ = match format {
            LogFormat::Json => registry
                .with(fmt::layer().json().with_current_span(true).with_span_list(false))
                .try_init(),
            LogFormat::Pretty => registry.with(fmt::layer().with_target(false)).try_init(),
        };
        return Ok(Telemetry { provider: None });
    }
    let provider = tracer_provider()?;
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("healthcare-api"))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        // Nothing here reads OpenTelemetry's current context: entering a
        // span (each poll of a request) need not make it current.
        .with_context_activation(false)
        // Spans only: log events stay in the logs.
        .with_filter(filter_fn(|meta| {
            meta.is_span() && meta.target().starts_with("healthcare_api") && meta.target() != UNTRACED
        }));
    // Each layer filters for itself, so the logs still see the request's
    // span as the current one inside an operation or a statement.
    let logs = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => fmt::layer().with_target(false).with_filter(filter).boxed(),
    };
    if tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .is_err()
    {
        let _ = provider.shutdown();
        return Ok(Telemetry { provider: None });
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    diesel::connection::set_default_instrumentation(crate::db::traces::instrumentation)
        .context("could not trace SQL statements")?;
    TRACES_ON.store(true, Ordering::Relaxed);
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// The exporter as the standard `OTEL_*` settings describe it (endpoint,
/// headers, timeout, batching, sampler, resource), protobuf over HTTP.
fn tracer_provider() -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .context("OTEL_EXPORTER_OTLP_ENDPOINT: the trace exporter could not be set up")?;
    let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    if !named {
        resource = resource.with_service_name("healthcare-api");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Makes the request's span the child of the caller's `traceparent` (W3C
/// trace context), names it by method and route, and records its trace id
/// for the logs. Only when traces are on.
pub fn follow_caller(span: &Span, headers: &axum::http::HeaderMap, method: &str, route: &str) {
    if !traces_on() || span.is_disabled() {
        return;
    }
    let caller = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    let _ = span.set_parent(caller);
    span.record("otel.name", format!("{method} {route}"));
    span.record("otel.kind", "server");
    span.set_attribute("http.request.method", method.to_owned());
    span.set_attribute("http.route", route.to_owned());
    let trace_id = span.context().span().span_context().trace_id();
    span.record("trace_id", tracing::field::display(trace_id));
}

/// Records the response's status on the request's span; a 5xx marks it failed.
pub fn record_status(span: &Span, status: u16) {
    if !traces_on() {
        return;
    }
    span.set_attribute("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.set_status(Status::error(""));
    }
}
