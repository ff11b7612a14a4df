//! Logging: pretty for people, JSON for machines. Spans carry ids, routes,
//! codes and durations only: never names, emails, tokens or variables.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Installs the global subscriber; a second call (as in tests) does nothing.
pub fn init(format: LogFormat, filter: &str) {
    // The driver's debug logs print statement parameters, which may be
    // patient data: never below info, whatever RUST_LOG says.
    let filter = format!("{filter},tokio_postgres=info,postgres_protocol=info");
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(fmt::layer().json().with_current_span(true).with_span_list(false))
            .try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().with_target(false)).try_init(),
    };
}
