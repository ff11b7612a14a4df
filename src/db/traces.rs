//! A span per SQL statement, when traces are on: named by what it does and
//! to which table ("SELECT patients"), with the SQL text and its `$n`
//! placeholders, never the values bound to them.

use std::collections::VecDeque;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use tracing::{Span, field::Empty};

use crate::telemetry::TRACE_ONLY;

/// The longest SQL text a span carries.
const MAX_SQL_CHARS: usize = 4096;

/// Every new connection's instrumentation (installed by `telemetry::init`).
pub fn instrumentation() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(StatementSpans::default()))
}

/// The spans of a connection's statements that have started and not
/// finished. diesel reports a statement's start with its bind values and
/// its end with its SQL alone, so a span is named only at the end: a
/// statement's values are never formatted. Statements on one connection
/// finish in the order they started (the protocol answers in order).
#[derive(Default)]
pub struct StatementSpans {
    running: VecDeque<Span>,
}

impl Instrumentation for StatementSpans {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            // Work outside any traced request (the audit sealer,
            // migrations, readiness probes) is not traced: a placeholder
            // keeps the order.
            InstrumentationEvent::StartQuery { .. } if !crate::telemetry::in_traced_span() => {
                self.running.push_back(Span::none());
            }
            InstrumentationEvent::StartQuery { .. } => {
                let span = tracing::info_span!(
                    target: TRACE_ONLY,
                    "db.statement",
                    otel.name = Empty,
                    otel.kind = "client",
                    otel.status_code = Empty,
                    db.system.name = "postgresql",
                    db.operation.name = Empty,
                    db.collection.name = Empty,
                    db.query.text = Empty,
                    "error.type" = Empty,
                );
                self.running.push_back(span);
            }
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                let Some(span) = self.running.pop_front().filter(|span| !span.is_disabled()) else {
                    return;
                };
                let sql = query.to_string();
                // Defensive: diesel's text of a statement with its values
                // puts them after this marker.
                let sql = sql.split(" -- binds: ").next().unwrap_or_default().trim();
                let (operation, table) = summary(sql);
                span.record(
                    "otel.name",
                    match table {
                        Some(table) => format!("{operation} {table}"),
                        None => operation.to_owned(),
                    },
                );
                span.record("db.operation.name", operation);
                if let Some(table) = table {
                    span.record("db.collection.name", table);
                }
                span.record("db.query.text", truncate(sql, MAX_SQL_CHARS));
                if let Some(error) = error {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", error_type(error));
                }
            }
            _ => {}
        }
    }
}

impl Drop for StatementSpans {
    /// Statements whose callers went away before they finished (a request
    /// cancelled by its client or its timeout) end with the connection's
    /// next checkout, marked as such.
    fn drop(&mut self) {
        for span in self.running.drain(..) {
            span.record("otel.name", "abandoned statement");
            span.record("otel.status_code", "ERROR");
            span.record("error.type", "abandoned");
        }
    }
}

/// What a statement does and the first table it names: `("SELECT",
/// Some("patients"))`. Both come from the SQL text, which holds no values.
fn summary(sql: &str) -> (&str, Option<&str>) {
    let operation = sql.split_whitespace().next().unwrap_or("SQL");
    let operation = if operation.chars().all(|c| c.is_ascii_alphabetic()) && !operation.is_empty() {
        operation
    } else {
        "SQL"
    };
    let table = sql
        .split_whitespace()
        .skip_while(|word| !["FROM", "INTO", "UPDATE"].iter().any(|k| word.eq_ignore_ascii_case(k)))
        .nth(1)
        // diesel writes a join as `FROM ("a" INNER JOIN "b" ...)`.
        .map(|word| word.trim_matches(|c: char| matches!(c, '"' | '(' | ')' | ',')))
        .filter(|table| {
            !table.is_empty()
                && table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !["SELECT", "WITH", "VALUES", "LATERAL"]
                    .iter()
                    .any(|k| table.eq_ignore_ascii_case(k))
        });
    (operation, table)
}

fn truncate(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// The kind of a failure, never its message (which may quote a value).
fn error_type(error: &diesel::result::Error) -> String {
    match error {
        diesel::result::Error::DatabaseError(kind, _) => format!("{kind:?}"),
        diesel::result::Error::NotFound => "NotFound".to_owned(),
        _ => "other".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_summarised_by_operation_and_table() {
        assert_eq!(
            summary(r#"SELECT "patients"."id", "patients"."name" FROM "patients" WHERE ("patients"."id" = $1)"#),
            ("SELECT", Some("patients"))
        );
        assert_eq!(
            summary(r#"INSERT INTO "audit_events" ("id", "action") VALUES ($1, $2)"#),
            ("INSERT", Some("audit_events"))
        );
        assert_eq!(
            summary(r#"UPDATE "users" SET "last_used_step" = $1 WHERE "id" = $2"#),
            ("UPDATE", Some("users"))
        );
        assert_eq!(summary("BEGIN"), ("BEGIN", None));
        assert_eq!(summary("SELECT 1"), ("SELECT", None));
        assert_eq!(summary(""), ("SQL", None));
        assert_eq!(summary("-- comment\nSELECT x FROM t"), ("SQL", Some("t")));
        assert_eq!(
            summary(
                r#"SELECT "mappings"."id" FROM ("mappings" INNER JOIN "doctors" ON "mappings"."doctor_id" = "doctors"."id")"#
            ),
            ("SELECT", Some("mappings"))
        );
        // Only plain names become a table.
        assert_eq!(summary("SELECT * FROM (SELECT 1) AS x"), ("SELECT", None));
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(truncate("ééé", 2), "éé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
