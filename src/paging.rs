//! Keyset pagination: page sizes, sort orders and opaque cursors that carry
//! the sort key and the id of the last row seen (never an offset).

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::AppError;

pub const MAX_PAGE: i64 = 100;

/// How many rows a page holds: 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(i64);

impl Limit {
    pub fn parse(field: &'static str, raw: i64) -> Result<Self, AppError> {
        if (1..=MAX_PAGE).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(AppError::bad_input(field, "must be from 1 to 100"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Name,
    CreatedAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub field: SortField,
    pub direction: Direction,
}

impl Order {
    pub const NEWEST_FIRST: Self = Self {
        field: SortField::CreatedAt,
        direction: Direction::Desc,
    };
    pub const BY_NAME: Self = Self {
        field: SortField::Name,
        direction: Direction::Asc,
    };
}

/// Where the last page ended: the sort key and id of its last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    Name(String, Uuid),
    CreatedAt(DateTime<Utc>, Uuid),
    /// For the audit trail, whose ids are ordered.
    Seq(i64),
}

impl Cursor {
    /// The cursor of a row ordered by `field` (name or creation time, then id).
    pub fn of(field: SortField, name: &str, created_at: DateTime<Utc>, id: Uuid) -> Self {
        match field {
            SortField::Name => Self::Name(name.to_owned(), id),
            SortField::CreatedAt => Self::CreatedAt(created_at, id),
        }
    }

    pub fn encode(&self) -> String {
        let raw = match self {
            Self::Name(name, id) => format!("n:{id}:{name}"),
            Self::CreatedAt(at, id) => format!("t:{id}:{}", at.timestamp_micros()),
            Self::Seq(n) => format!("s:{n}"),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Decodes a cursor made for `order` (or for a sequence when `order` is
    /// `None`); anything else is `BAD_USER_INPUT` on `field`.
    pub fn decode(field: &'static str, raw: &str, order: Option<Order>) -> Result<Self, AppError> {
        let bad = || AppError::bad_input(field, "is not a cursor of this list");
        if raw.len() > 1200 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
        let with_id = || -> Result<(Uuid, &str), AppError> {
            let (id, key) = rest.split_once(':').ok_or_else(bad)?;
            Ok((Uuid::parse_str(id).map_err(|_| bad())?, key))
        };
        let cursor = match (kind, order.map(|o| o.field)) {
            ("n", Some(SortField::Name)) => {
                let (id, name) = with_id()?;
                if name.contains('\0') {
                    return Err(bad());
                }
                Self::Name(name.to_owned(), id)
            }
            ("t", Some(SortField::CreatedAt)) => {
                let (id, micros) = with_id()?;
                let micros = micros.parse::<i64>().map_err(|_| bad())?;
                Self::CreatedAt(DateTime::from_timestamp_micros(micros).ok_or_else(bad)?, id)
            }
            ("s", None) => Self::Seq(rest.parse::<i64>().map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        Ok(cursor)
    }
}

/// One page of rows, each with its cursor.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub rows: Vec<(Cursor, T)>,
    pub has_next: bool,
    pub has_previous: bool,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in order: the extra
    /// row only says whether there is a next page.
    pub fn from_rows(mut rows: Vec<T>, limit: Limit, after: bool, cursor: impl Fn(&T) -> Cursor) -> Self {
        let has_next = rows.len() as i64 > limit.get();
        rows.truncate(limit.get() as usize);
        Self {
            rows: rows.into_iter().map(|row| (cursor(&row), row)).collect(),
            has_next,
            has_previous: after,
        }
    }

    pub fn map<U>(self, f: impl Fn(T) -> U) -> Page<U> {
        Page {
            rows: self.rows.into_iter().map(|(c, r)| (c, f(r))).collect(),
            has_next: self.has_next,
            has_previous: self.has_previous,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BY_NAME: Option<Order> = Some(Order {
        field: SortField::Name,
        direction: Direction::Asc,
    });
    const BY_TIME: Option<Order> = Some(Order {
        field: SortField::CreatedAt,
        direction: Direction::Desc,
    });

    #[test]
    fn cursors_round_trip() {
        let id = Uuid::new_v4();
        let c = Cursor::Name("Ann: the 2nd".into(), id);
        assert_eq!(Cursor::decode("after", &c.encode(), BY_NAME).unwrap(), c);
        let at = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let c = Cursor::CreatedAt(at, id);
        assert_eq!(Cursor::decode("after", &c.encode(), BY_TIME).unwrap(), c);
        assert_eq!(
            Cursor::decode("after", &Cursor::Seq(42).encode(), None).unwrap(),
            Cursor::Seq(42)
        );
    }

    #[test]
    fn garbage_and_mismatched_cursors_are_refused() {
        let by_name = Cursor::Name("Ann".into(), Uuid::new_v4()).encode();
        assert!(Cursor::decode("after", &by_name, BY_TIME).is_err());
        for bad in [
            "",
            "garbage",
            "!!!",
            &URL_SAFE_NO_PAD.encode("t:x:1"),
            &"A".repeat(5000),
        ] {
            assert!(Cursor::decode("after", bad, BY_NAME).is_err(), "{bad}");
            assert!(Cursor::decode("after", bad, BY_TIME).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits() {
        assert!(Limit::parse("first", 0).is_err());
        assert!(Limit::parse("first", 101).is_err());
        assert!(Limit::parse("first", -1).is_err());
        assert_eq!(Limit::parse("first", 100).unwrap().get(), 100);
    }
}
