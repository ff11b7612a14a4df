//! The one text form of a point in time, as both APIs write it: RFC 3339 in
//! UTC with milliseconds (`2026-01-31T09:30:00.000Z`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

pub fn text(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// For `#[serde(serialize_with = "crate::time::serialize")]`.
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&text(at))
}
