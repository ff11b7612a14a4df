//! Keyset pagination: page sizes, sort orders and opaque cursors that carry
//! the sort key and the id of the last row seen (never an offset).

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::AppError;

pub const MAX_PAGE: i64 = 100;

/// How many rows a page holds: 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    /// `t<microseconds>.<id>`, `n<base64url of the name>.<id>` or
    /// `s<sequence>`, with the id as 32 lower-case hex digits: short, safe in
    /// a URL, and of a grammar the OpenAPI document can state
    /// (`CREATED_AT_CURSOR_PATTERN`, `NAME_CURSOR_PATTERN`).
    pub fn encode(&self) -> String {
        match self {
            Self::Name(name, id) => format!("n{}.{}", URL_SAFE_NO_PAD.encode(name), id.simple()),
            Self::CreatedAt(at, id) => format!("t{}.{}", at.timestamp_micros(), id.simple()),
            Self::Seq(n) => format!("s{n}"),
        }
    }

    /// Decodes a cursor made for `order` (or for a sequence when `order` is
    /// `None`); anything else is `BAD_USER_INPUT` on `field`. Any cursor of
    /// the right grammar is a position in the list, even one this server did
    /// not hand out.
    pub fn decode(field: &'static str, raw: &str, order: Option<Order>) -> Result<Self, AppError> {
        let bad = || AppError::bad_input(field, "is not a cursor of this list");
        if raw.len() > MAX_CURSOR_CHARS {
            return Err(bad());
        }
        let with_id = |rest: &str| -> Result<(String, Uuid), AppError> {
            let (key, id) = rest.rsplit_once('.').ok_or_else(bad)?;
            let hex = id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                return Err(bad());
            }
            Ok((key.to_owned(), Uuid::parse_str(id).map_err(|_| bad())?))
        };
        let kind = raw.chars().next().ok_or_else(bad)?;
        let rest = &raw[kind.len_utf8()..];
        let cursor = match (kind, order.map(|o| o.field)) {
            ('n', Some(SortField::Name)) => {
                let (key, id) = with_id(rest)?;
                if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                    return Err(bad());
                }
                let bytes = LENIENT_BASE64.decode(&key).map_err(|_| bad())?;
                // Text can hold no NUL; any other name is just a position.
                let name = String::from_utf8_lossy(&bytes).replace('\0', "\u{FFFD}");
                Self::Name(name, id)
            }
            ('t', Some(SortField::CreatedAt)) => {
                let (key, id) = with_id(rest)?;
                let digits = key.strip_prefix('-').unwrap_or(&key);
                if !(1..=16).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let micros = key.parse::<i64>().map_err(|_| bad())?;
                Self::CreatedAt(DateTime::from_timestamp_micros(micros).ok_or_else(bad)?, id)
            }
            ('s', None) if !rest.is_empty() && rest.len() <= 18 && rest.bytes().all(|b| b.is_ascii_digit()) => {
                Self::Seq(rest.parse::<i64>().map_err(|_| bad())?)
            }
            _ => return Err(bad()),
        };
        Ok(cursor)
    }
}

pub const MAX_CURSOR_CHARS: usize = 1200;

/// The grammar of a cursor of a list by creation time, for the OpenAPI
/// document.
pub const CREATED_AT_CURSOR_PATTERN: &str = r"^t-?[0-9]{1,16}\.[0-9a-f]{32}$";

/// The grammar of a cursor of a list by name.
pub const NAME_CURSOR_PATTERN: &str = r"^n(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?\.[0-9a-f]{32}$";

/// base64url without padding that takes any final bits, so that every string
/// of `NAME_CURSOR_PATTERN` decodes.
const LENIENT_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

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
            "t1.ABCDEF0123456789abcdef0123456789",
            "t12345678901234567.0123456789abcdef0123456789abcdef",
            "tx.0123456789abcdef0123456789abcdef",
            "nA.0123456789abcdef0123456789abcdef",
            "n!!.0123456789abcdef0123456789abcdef",
        ] {
            assert!(Cursor::decode("after", bad, BY_NAME).is_err(), "{bad}");
            assert!(Cursor::decode("after", bad, BY_TIME).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_of_the_documented_grammar_are_positions() {
        let time = regex::Regex::new(CREATED_AT_CURSOR_PATTERN).unwrap();
        let name = regex::Regex::new(NAME_CURSOR_PATTERN).unwrap();
        let id = Uuid::new_v4();
        for (c, order, re) in [
            (Cursor::Name("Ann\u{0}é".into(), id).encode(), BY_NAME, &name),
            (Cursor::Name(String::new(), id).encode(), BY_NAME, &name),
            (Cursor::CreatedAt(DateTime::UNIX_EPOCH, id).encode(), BY_TIME, &time),
        ] {
            assert!(re.is_match(&c), "{c}");
            assert!(Cursor::decode("after", &c, order).is_ok(), "{c}");
        }
        for odd in [
            "n0.00000000000000000000000000000000",
            "nAB.00000000000000000000000000000000",
            "nABC_.00000000000000000000000000000000",
            "nAA.ffffffffffffffffffffffffffffffff",
        ] {
            assert_eq!(
                name.is_match(odd),
                odd != "n0.00000000000000000000000000000000",
                "{odd}"
            );
            assert_eq!(
                Cursor::decode("after", odd, BY_NAME).is_ok(),
                name.is_match(odd),
                "{odd}"
            );
        }
        for odd in [
            "t-9999999999999999.00000000000000000000000000000000",
            "t0.00000000000000000000000000000000",
        ] {
            assert!(time.is_match(odd));
            assert!(Cursor::decode("after", odd, BY_TIME).is_ok(), "{odd}");
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
