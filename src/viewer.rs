//! `Viewer`: who is asking, as proven by a verified access token.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;

/// What a user may do: their own records (`USER`) or everyone's (`ADMIN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Admin => "ADMIN",
        }
    }

    pub(crate) fn from_db(s: &str) -> Self {
        if s == "ADMIN" { Self::Admin } else { Self::User }
    }
}

#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: Uuid,
    pub role: Role,
    /// When the access token stops being valid (seconds since the epoch).
    pub expires_at: i64,
    /// The user's token version the access token was issued under.
    pub token_version: i32,
    /// The session the access token was issued to (none in tokens issued
    /// before sessions were kept).
    pub session_id: Option<uuid::Uuid>,
    /// The `X-Request-Id` of the request being served, for the audit trail.
    pub request_id: Option<String>,
}

impl Viewer {
    pub fn with_request_id(mut self, request_id: Option<&str>) -> Self {
        self.request_id = request_id.map(str::to_owned);
        self
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}
