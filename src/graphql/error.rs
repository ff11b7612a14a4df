//! How errors reach GraphQL clients: `AppError` becomes an error with
//! `extensions.code` (and `extensions.field`), and every error async-graphql
//! raises itself (parse, validation, limits, argument coercion) is a client
//! error: `BAD_USER_INPUT`, naming the argument or input field where it can.

use async_graphql::{ErrorExtensionValues, ServerError, Value};

use crate::error::AppError;

/// `extensions.code`, `extensions.field` where the error names one,
/// `extensions.retryable` where the same request may succeed if sent again,
/// and `extensions.retryAfter` (seconds) where it may after a wait.
fn extensions(err: &AppError) -> ErrorExtensionValues {
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", err.code());
    if let Some(field) = err.field() {
        extensions.set("field", field);
    }
    if err.retryable() {
        extensions.set("retryable", true);
    }
    if let (Some(seconds), false) = (err.retry_after(), err.retryable()) {
        // Seconds to wait first, as REST's `Retry-After` says.
        extensions.set("retryAfter", seconds);
    }
    extensions
}

fn graphql_error(err: &AppError) -> async_graphql::Error {
    err.log();
    async_graphql::Error {
        message: err.to_string(),
        source: None,
        extensions: Some(extensions(err)),
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        graphql_error(&err)
    }
}

/// An error for a request that never reached execution (bad body, batch too big).
pub fn request_error(err: &AppError) -> ServerError {
    let mut server_error = ServerError::new(err.to_string(), None);
    server_error.extensions = Some(extensions(err));
    server_error
}

/// Gives every error without a code the code `BAD_USER_INPUT`: such errors
/// come from async-graphql's parsing, validation and input coercion, since
/// every error of ours carries a code. A syntax error says what was
/// expected, as `Syntax Error: ...`, with its location, rather than in the
/// parser's drawing of the line.
pub fn classify(errors: &mut [ServerError]) {
    for err in errors {
        let extensions = err.extensions.get_or_insert_with(ErrorExtensionValues::default);
        if extensions.get("code").is_some() {
            continue;
        }
        if let Some(message) = syntax_error(&err.message) {
            err.message = message;
        }
        extensions.set("code", "BAD_USER_INPUT");
        if let Some(field) = offending_field(&err.message) {
            extensions.set("field", Value::String(field));
        }
    }
}

/// The parser's message (`" --> 1:2 | ... = expected selection"`) as
/// `Syntax Error: Expected selection.`; `None` for any other message.
fn syntax_error(message: &str) -> Option<String> {
    if !message.starts_with(" --> ") {
        return None;
    }
    let what = message
        .lines()
        .rev()
        .find_map(|line| line.trim_start().strip_prefix("= "))
        .unwrap_or("the document could not be parsed")
        .trim()
        .trim_end_matches('.');
    let mut chars = what.chars();
    let first = chars.next()?.to_uppercase();
    Some(format!("Syntax Error: {first}{}.", chars.as_str()))
}

/// The argument or input field an async-graphql message is about, such as
/// `input.email` in `Invalid value for argument "input.email", ...` or
/// `input.name` in `... argument "input", field "name" of type ... is required`:
/// the quoted names that follow `argument`, `field` or `for`, or that start
/// with `$` (a variable), joined with dots. Type names are left out.
fn offending_field(message: &str) -> Option<String> {
    let mut names: Vec<&str> = Vec::new();
    let mut rest = message;
    while let Some(open) = rest.find('"') {
        let before = rest[..open].trim_end();
        let after = &rest[open + 1..];
        let Some(close) = after.find('"') else { break };
        let quoted = &after[..close];
        let keyword = before
            .rsplit(|c: char| c.is_whitespace() || c == ',')
            .next()
            .unwrap_or("");
        if let Some(variable) = quoted.strip_prefix('$') {
            names.push(variable);
        } else if matches!(keyword, "argument" | "field" | "for") && !quoted.is_empty() {
            names.push(quoted);
        }
        rest = &after[close + 1..];
    }
    names.dedup();
    (!names.is_empty()).then(|| names.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failure_body_carries_this_shape() {
        for err in [AppError::Unavailable, AppError::bad_input("name", "must not be empty")] {
            let error = serde_json::to_value(request_error(&err)).unwrap();
            assert_eq!(error, err.failure_body()["errors"][0]);
        }
    }

    #[test]
    fn syntax_errors_read_as_the_specification_writes_them() {
        let parsed = async_graphql::parser::parse_query("{").unwrap_err();
        let err = ServerError::from(parsed);
        assert!(err.message.contains("-->"), "{}", err.message);
        let mut errors = vec![err];
        classify(&mut errors);
        assert_eq!(errors[0].message, "Syntax Error: Expected selection.");
        assert_eq!(errors[0].locations.len(), 1);
        assert_eq!(syntax_error("Unknown field \"x\""), None);
    }

    #[test]
    fn field_names_come_out_of_coercion_messages() {
        assert_eq!(
            offending_field(r#"Invalid value for argument "input.email", expected type "String""#).as_deref(),
            Some("input.email")
        );
        assert_eq!(
            offending_field(r#"Unknown field "foo" on type "Query"."#).as_deref(),
            Some("foo")
        );
        assert_eq!(offending_field("syntax error").as_deref(), None);
        assert_eq!(
            offending_field(r#"Invalid value for argument "input", unknown field "x" of type "CreatePatientInput""#)
                .as_deref(),
            Some("input.x")
        );
        assert_eq!(
            offending_field(
                r#"Invalid value for argument "input", field "name" of type "String!" is required but not provided"#
            )
            .as_deref(),
            Some("input.name")
        );
        assert_eq!(
            offending_field(r#"Variable "$t" got invalid value 5; Expected type "String""#).as_deref(),
            Some("t")
        );
        assert_eq!(
            offending_field(r#"Failed to parse "Int": Only integers from -2147483648 to 2147483647 are accepted."#)
                .as_deref(),
            None
        );
    }
}

/// A loader's error, shared by every field waiting on the batch.
#[derive(Debug, Clone)]
pub struct LoadError(pub std::sync::Arc<AppError>);

impl From<AppError> for LoadError {
    fn from(err: AppError) -> Self {
        Self(std::sync::Arc::new(err))
    }
}

/// With the same code and field as the original.
impl From<LoadError> for async_graphql::Error {
    fn from(LoadError(err): LoadError) -> Self {
        graphql_error(&err)
    }
}
