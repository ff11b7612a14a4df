//! GraphQL object and scalar types shared by several parts of the schema.

use async_graphql::{Enum, ID, InputValueError, InputValueResult, Object, Scalar, ScalarType, SimpleObject, Value};
use chrono::Utc;

use crate::{accounts, paging};

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
        Value::String(crate::time::text(&self.0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "Role", remote = "crate::viewer::Role")]
pub enum Role {
    User,
    Admin,
}

/// A user as the viewer sees them (`accounts::Seen`), shared (not copied)
/// by every field that shows them.
#[derive(Debug, Clone)]
pub struct User(pub accounts::Seen);

#[Object(name = "User")]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.user().id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.user().name
    }
    /// Stored and compared case-insensitively; returned as the user typed it.
    /// Only the user themself and admins see it: null for anyone else (for
    /// example through Doctor.createdBy or Mapping.assignedBy).
    async fn email(&self) -> Option<&str> {
        self.0.email()
    }
    /// Only the user themself and admins see it: null for anyone else.
    async fn role(&self) -> Option<Role> {
        self.0.role().map(Role::from)
    }
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.user().created_at)
    }
    /// Only the user themself and admins see it: null for anyone else.
    async fn mfa_enabled(&self) -> Option<bool> {
        self.0.mfa_enabled()
    }

    /// Only the user themself and admins see it: null for anyone else. A disabled user cannot sign in.
    async fn disabled(&self) -> Option<bool> {
        self.0.disabled()
    }
}

/// ISO 8601 calendar date, YYYY-MM-DD.
///
/// A value that is not a date is kept as `Invalid` rather than refused while
/// the input is coerced, so that the resolver can say which input field was
/// wrong (`extensions.field`); async-graphql's own coercion error names only
/// the input type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Date {
    Valid(chrono::NaiveDate),
    Invalid,
}

impl Date {
    /// The date as text, for the service to read as REST's is read (an
    /// invalid one is refused there, with the same message).
    pub fn into_text(self) -> String {
        match self {
            Self::Valid(d) => d.format("%Y-%m-%d").to_string(),
            Self::Invalid => String::new(),
        }
    }
}

/// ISO 8601 calendar date, YYYY-MM-DD.
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        Ok(match &value {
            Value::String(s) => crate::input::calendar_date(s).map_or(Self::Invalid, Self::Valid),
            _ => Self::Invalid,
        })
    }

    fn is_valid(_value: &Value) -> bool {
        true
    }

    fn to_value(&self) -> Value {
        match self {
            Self::Valid(d) => Value::String(d.format("%Y-%m-%d").to_string()),
            Self::Invalid => Value::Null,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum SortDirection {
    Asc,
    Desc,
}

impl From<SortDirection> for paging::Direction {
    fn from(d: SortDirection) -> Self {
        match d {
            SortDirection::Asc => Self::Asc,
            SortDirection::Desc => Self::Desc,
        }
    }
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

impl PageInfo {
    pub fn of<T>(page: &paging::Page<T>) -> Self {
        Self {
            has_next_page: page.has_next,
            has_previous_page: page.has_previous,
            start_cursor: page.rows.first().map(|(c, _)| c.encode()),
            end_cursor: page.rows.last().map(|(c, _)| c.encode()),
        }
    }
}

/// Reads an optional `ID` argument as a record id.
pub fn optional_id(field: &'static str, id: Option<&ID>) -> Result<Option<uuid::Uuid>, crate::error::AppError> {
    id.map(|id| crate::input::parse_id(field, id)).transpose()
}

/// The page size when `first` is null.
pub const DEFAULT_PAGE: i32 = 20;

/// `first` as a page size (1 to 100).
pub fn limit(first: Option<i32>) -> Result<paging::Limit, crate::error::AppError> {
    paging::Limit::parse("first", i64::from(first.unwrap_or(DEFAULT_PAGE)))
}

/// The complexity of a connection field: its page size times its selection.
pub fn page_complexity(first: Option<i32>, child: usize) -> usize {
    usize::try_from(first.unwrap_or(DEFAULT_PAGE).clamp(1, 100)).unwrap_or(100) * child
}

/// Reads a GraphQL update field: absent keeps, null clears, a value sets.
pub fn change<T, U>(value: async_graphql::MaybeUndefined<T>, f: impl FnOnce(T) -> U) -> crate::input::Change<U> {
    match value {
        async_graphql::MaybeUndefined::Undefined => crate::input::Change::Keep,
        async_graphql::MaybeUndefined::Null => crate::input::Change::Clear,
        async_graphql::MaybeUndefined::Value(v) => crate::input::Change::Set(f(v)),
    }
}
