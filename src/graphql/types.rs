//! GraphQL object and scalar types shared by several parts of the schema.

use async_graphql::{Enum, ID, InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};
use chrono::{SecondsFormat, Utc};

use crate::accounts;

/// RFC 3339 timestamp in UTC, e.g. 2026-11-23T10:15:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime(pub chrono::DateTime<Utc>);

/// RFC 3339 timestamp in UTC, e.g. 2026-11-23T10:15:00Z.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| Self(t.with_timezone(&Utc)))
                .map_err(|_| InputValueError::custom("expected an RFC 3339 timestamp like 2026-11-23T10:15:00Z")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "Role")]
pub enum Role {
    User,
    Admin,
}

impl From<accounts::Role> for Role {
    fn from(role: accounts::Role) -> Self {
        match role {
            accounts::Role::User => Self::User,
            accounts::Role::Admin => Self::Admin,
        }
    }
}

#[derive(Debug, Clone, SimpleObject)]
pub struct User {
    pub id: ID,
    pub name: String,
    /// Stored and compared case-insensitively; returned as the user typed it.
    pub email: String,
    pub role: Role,
    pub created_at: DateTime,
}

impl From<accounts::User> for User {
    fn from(u: accounts::User) -> Self {
        Self {
            id: ID(u.id.to_string()),
            name: u.name,
            email: u.email,
            role: u.role.into(),
            created_at: DateTime(u.created_at),
        }
    }
}
