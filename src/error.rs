//! `AppError`: the one error type of the service layer, and the table that maps
//! each variant to its GraphQL `extensions.code` and its HTTP status.

use std::time::Duration;

use axum::http::StatusCode;

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("authentication required: send a valid access token")]
    Unauthenticated,
    /// A failed credential check (login, refresh); same code, its own text.
    #[error("{0}")]
    BadCredentials(&'static str),
    /// The password was right, and the account has MFA on: the login
    /// needs its second factor.
    #[error("this account has MFA on: send totpCode, the current code of your authenticator app or a recovery code")]
    MfaRequired,
    /// A document sent by a hash the server does not know (Apollo's
    /// automatic persisted queries; with `TRUSTED_DOCUMENTS`, any document
    /// not in the manifest). GraphQL only.
    #[error("PersistedQueryNotFound: the server does not know this document; send it with its hash")]
    PersistedQueryNotFound,
    #[error("you may not do this")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{field}: {message}")]
    BadInput { field: &'static str, message: &'static str },
    /// A request body over the size limit.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// A request body that is not declared as JSON.
    #[error("Content-Type: must be application/json")]
    NotJson,
    #[error("{message}")]
    Conflict {
        field: Option<&'static str>,
        message: &'static str,
    },
    #[error("too many attempts; try again later")]
    TooManyRequests,
    /// Over the per-client limit of account attempts (`AUTH_RATE_LIMIT`).
    #[error("too many attempts from this address; try again in {} s", whole_seconds(*retry_after))]
    RateLimited { retry_after: Duration },
    /// A subscriber fell too far behind the events and was stopped.
    #[error("the subscription fell behind and was stopped; subscribe again")]
    SubscriberTooSlow,
    /// A server or connection limit on subscriptions was reached.
    #[error("too many subscriptions")]
    TooManySubscriptions,
    /// The database could not be reached in time, or could not confirm a
    /// write (the connection was lost around its commit, the commit was not
    /// confirmed by the synchronous standby, the primary is read-only during
    /// a failover): the request may or may not have taken effect, and may be
    /// sent again (with the same `Idempotency-Key`, for a create).
    #[error("the service is temporarily unavailable; try again")]
    Unavailable,
    /// The server is serving as many requests as it may
    /// (`MAX_CONCURRENT_REQUESTS`): this one was not started.
    #[error("the server is busy; try again shortly")]
    Busy,
    #[error("internal server error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn bad_input(field: &'static str, message: &'static str) -> Self {
        Self::BadInput { field, message }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    /// The body of an answer to a request that failed before a transport
    /// could shape it (a panic, a timeout): the REST error shape and the
    /// GraphQL one at once, since the path may be either's.
    pub fn failure_body(&self) -> serde_json::Value {
        let message = self.to_string();
        let mut extensions = serde_json::json!({ "code": self.code() });
        if let Some(field) = self.field() {
            extensions["field"] = field.into();
        }
        if self.retryable() {
            extensions["retryable"] = true.into();
        }
        serde_json::json!({
            "error": { "code": self.code(), "message": message, "field": self.field() },
            "errors": [{ "message": message, "extensions": extensions }],
        })
    }

    /// The contract's `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated | Self::BadCredentials(_) => "UNAUTHENTICATED",
            Self::MfaRequired => "MFA_REQUIRED",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadInput { .. } | Self::PayloadTooLarge | Self::NotJson => "BAD_USER_INPUT",
            Self::Conflict { .. } => "CONFLICT",
            Self::TooManyRequests | Self::RateLimited { .. } | Self::TooManySubscriptions => "TOO_MANY_REQUESTS",
            Self::SubscriberTooSlow => "INTERNAL_SERVER_ERROR",
            Self::Unavailable | Self::Busy | Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated | Self::BadCredentials(_) | Self::MfaRequired => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadInput { .. } | Self::PersistedQueryNotFound => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::TooManyRequests | Self::RateLimited { .. } | Self::TooManySubscriptions => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::SubscriberTooSlow => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unavailable | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request may succeed if sent again.
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Unavailable | Self::Busy)
    }

    /// Seconds a client should wait before sending the request again
    /// (`Retry-After`), where waiting helps.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooManyRequests => Some(crate::accounts::THROTTLE_WINDOW.as_secs()),
            Self::RateLimited { retry_after } => Some(whole_seconds(*retry_after)),
            _ if self.retryable() => Some(1),
            _ => None,
        }
    }

    /// The input field the error is about, where there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::BadInput { field, .. } => Some(field),
            Self::Conflict { field, .. } => *field,
            Self::NotJson => Some("Content-Type"),
            Self::MfaRequired => Some("totpCode"),
            _ => None,
        }
    }

    /// Logs what the client will not see: the source chain of an internal error.
    pub fn log(&self) {
        match self {
            Self::Internal(err) => tracing::error!(error = format!("{err:#}"), "internal error"),
            Self::Unavailable => tracing::warn!("database unavailable"),
            _ => {}
        }
    }
}

/// A wait in whole seconds, rounded up, at least one.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => Self::NotFound,
            // The connection failed under the statement (or its commit, so
            // it may have committed), the primary was demoted, or the
            // transaction lost a race: all worth the same request again.
            Error::DatabaseError(
                kind @ (DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::ReadOnlyTransaction
                | DatabaseErrorKind::SerializationFailure),
                ref info,
            ) => {
                if matches!(kind, DatabaseErrorKind::ReadOnlyTransaction) {
                    crate::db::saw_read_only();
                }
                tracing::warn!(
                    error = info.message(),
                    "a database statement failed; the client may retry"
                );
                Self::Unavailable
            }
            Error::DatabaseError(DatabaseErrorKind::Unknown, ref info) if session_ended(info.message()) => {
                tracing::warn!(
                    error = info.message(),
                    "the database ended the session under a statement; the client may retry"
                );
                Self::Unavailable
            }
            Error::RollbackErrorOnCommit { .. } | Error::BrokenTransactionManager => {
                tracing::warn!("a commit's outcome is unknown; the client may retry");
                Self::Unavailable
            }
            other => Self::Internal(other.into()),
        }
    }
}

/// Whether PostgreSQL's error says that it ended the session (a shutdown, a
/// restart, a crash, the primary's demotion: SQLSTATE class 57, which the
/// driver does not name) or refused it while starting or stopping, or that
/// the transaction lost a deadlock. The server's English messages are
/// matched, as diesel passes on the text but not the SQLSTATE; a server set
/// to another `lc_messages` gets these as internal errors, never as success.
/// PgBouncer's own refusals while the server behind it restarts (it cannot
/// log in to it yet, or lost its connection under a query) mean the same.
fn session_ended(message: &str) -> bool {
    message.starts_with("terminating connection")
        || message.starts_with("the database system is")
        || message.starts_with("canceling statement due to conflict with recovery")
        || message == "deadlock detected"
        || message.starts_with("server login has been failing")
        || message == "pgbouncer cannot connect to server"
        || message == "server conn crashed?"
        || message == "query_wait_timeout"
}

/// Maps a unique violation of the named constraint (or unique index) to a
/// client error, next to the query that can raise it.
pub trait OnConstraint<T> {
    fn on_unique(self, constraint: &str, err: AppError) -> AppResult<T>;
}

impl<T> OnConstraint<T> for Result<T, diesel::result::Error> {
    fn on_unique(self, constraint: &str, err: AppError) -> AppResult<T> {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info))
                if info.constraint_name() == Some(constraint) =>
            {
                Err(err)
            }
            other => other.map_err(AppError::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_sessions_are_told_by_their_message() {
        for ended in [
            "terminating connection due to administrator command",
            "the database system is shutting down",
            "deadlock detected",
            "server login has been failing, try again later (server_login_retry)",
            "server conn crashed?",
        ] {
            assert!(session_ended(ended), "{ended}");
        }
        for other in [
            "duplicate key value violates unique constraint",
            "syntax error at or near \"x\"",
        ] {
            assert!(!session_ended(other), "{other}");
        }
    }

    #[test]
    fn every_variant_has_a_contract_code_and_status() {
        let cases = [
            (AppError::Unauthenticated, "UNAUTHENTICATED", 401),
            (AppError::BadCredentials("x"), "UNAUTHENTICATED", 401),
            (AppError::MfaRequired, "MFA_REQUIRED", 401),
            (AppError::PersistedQueryNotFound, "PERSISTED_QUERY_NOT_FOUND", 400),
            (AppError::Forbidden, "FORBIDDEN", 403),
            (AppError::NotFound, "NOT_FOUND", 404),
            (AppError::bad_input("email", "bad"), "BAD_USER_INPUT", 400),
            (AppError::PayloadTooLarge, "BAD_USER_INPUT", 413),
            (AppError::NotJson, "BAD_USER_INPUT", 415),
            (
                AppError::Conflict {
                    field: None,
                    message: "x",
                },
                "CONFLICT",
                409,
            ),
            (AppError::TooManyRequests, "TOO_MANY_REQUESTS", 429),
            (AppError::Unavailable, "INTERNAL_SERVER_ERROR", 503),
            (AppError::Busy, "INTERNAL_SERVER_ERROR", 503),
            (
                AppError::internal(anyhow::anyhow!("boom")),
                "INTERNAL_SERVER_ERROR",
                500,
            ),
        ];
        for (err, code, status) in cases {
            assert_eq!(err.code(), code);
            assert_eq!(err.status().as_u16(), status);
        }
    }

    #[test]
    fn an_ended_session_is_retryable_and_other_database_errors_are_not() {
        use diesel::result::{DatabaseErrorKind, Error};
        let unknown = |message: &str| Error::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message.to_owned()));
        for message in [
            "terminating connection due to administrator command",
            "terminating connection due to unexpected postmaster exit",
            "terminating connection because of crash of another server process",
            "the database system is shutting down",
            "the database system is in recovery mode",
            "deadlock detected",
        ] {
            assert!(AppError::from(unknown(message)).retryable(), "{message}");
        }
        for message in ["division by zero", "syntax error at or near \"terminating connection\""] {
            assert!(!AppError::from(unknown(message)).retryable(), "{message}");
        }
        let closed = Error::DatabaseError(DatabaseErrorKind::ClosedConnection, Box::new(String::new()));
        assert!(AppError::from(closed).retryable());
    }

    #[test]
    fn internal_errors_do_not_show_their_source() {
        let err = AppError::internal(anyhow::anyhow!("relation users does not exist"));
        assert_eq!(err.to_string(), "internal server error");
    }
}
