//! Inputs as types that cannot hold bad values: holding a `PersonName`, an
//! `Email`, a `Phone`, a `Password`, an `Id`, a `Text` or a `SearchTerm`
//! proves it valid. Both transports parse through these, so each rule exists
//! once.

use std::fmt;

use chrono::NaiveDate;
use uuid::Uuid;

use crate::{config::SecretString, error::AppError};

/// A change to an optional field of a record: leave it, clear it, or set it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Change<T> {
    /// Parses the value of a `Set`, keeping `Keep` and `Clear` as they are.
    pub fn try_map<U>(self, f: impl FnOnce(T) -> Result<U, AppError>) -> Result<Change<U>, AppError> {
        Ok(match self {
            Self::Keep => Change::Keep,
            Self::Clear => Change::Clear,
            Self::Set(v) => Change::Set(f(v)?),
        })
    }

    /// For diesel changesets: `None` skips the column, `Some(None)` sets NULL.
    pub fn into_column(self) -> Option<Option<T>> {
        match self {
            Self::Keep => None,
            Self::Clear => Some(None),
            Self::Set(v) => Some(Some(v)),
        }
    }
}

/// In a JSON body (with `#[serde(default)]` on the field): absent keeps the
/// value, `null` clears it, a value sets it.
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Change<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            None => Self::Clear,
            Some(value) => Self::Set(value),
        })
    }
}

/// A record id: a UUID.
pub fn parse_id(field: &'static str, raw: &str) -> Result<Uuid, AppError> {
    let raw = raw.trim();
    if raw.len() != 36 {
        return Err(AppError::bad_input(field, "is not a valid id"));
    }
    Uuid::parse_str(raw).map_err(|_| AppError::bad_input(field, "is not a valid id"))
}

fn reject_nul(field: &'static str, raw: &str) -> Result<(), AppError> {
    if raw.contains('\0') {
        return Err(AppError::bad_input(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// Free text of at most `max` characters, trimmed, without NUL; empty is no
/// value (`None`).
pub fn optional_text(field: &'static str, raw: &str, max: usize) -> Result<Option<String>, AppError> {
    reject_nul(field, raw)?;
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > max {
        return Err(AppError::BadInput {
            field,
            message: match max {
                1000 => "must be at most 1,000 characters",
                20_000 => "must be at most 20,000 characters",
                _ => "is too long",
            },
        });
    }
    Ok(Some(s.to_owned()))
}

/// A required one-line label (a name, a specialization): 1 to 200 characters.
pub fn label(field: &'static str, raw: &str) -> Result<String, AppError> {
    PersonName::parse(field, raw).map(|n| n.0)
}

/// A phone number: digits, spaces and `+-()`, at most 32 characters, with at
/// least one digit.
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        let ok = (1..=32).contains(&s.chars().count())
            && s.chars().any(|c| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(AppError::bad_input(
                field,
                "must be digits, spaces and +-() (at most 32)",
            ))
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phone(..)")
    }
}

/// A calendar date written `YYYY-MM-DD`, or `None`.
pub fn calendar_date(raw: &str) -> Option<NaiveDate> {
    if raw.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()
}

/// A date written `YYYY-MM-DD`, or `BAD_USER_INPUT` naming `field`.
pub fn date(field: &'static str, raw: &str) -> Result<NaiveDate, AppError> {
    calendar_date(raw).ok_or(AppError::bad_input(field, "must be a date like 2026-01-31"))
}

/// A date of birth: not in the future, not before 1850.
pub fn birth_date(field: &'static str, date: NaiveDate) -> Result<NaiveDate, AppError> {
    let today = chrono::Utc::now().date_naive();
    let earliest = NaiveDate::from_ymd_opt(1850, 1, 1).unwrap_or(NaiveDate::MIN);
    if date > today {
        return Err(AppError::bad_input(field, "must not be in the future"));
    }
    if date < earliest {
        return Err(AppError::bad_input(field, "must not be before 1850-01-01"));
    }
    Ok(date)
}

/// A search string: matched as a case-insensitive substring, with `%` and `_`
/// taken literally. Empty means no filter.
#[derive(Clone, PartialEq, Eq)]
pub struct SearchTerm(String);

impl SearchTerm {
    pub fn parse(field: &'static str, raw: &str) -> Result<Option<Self>, AppError> {
        reject_nul(field, raw)?;
        let s = raw.trim();
        match s.chars().count() {
            0 => Ok(None),
            1..=200 => Ok(Some(Self(s.to_owned()))),
            _ => Err(AppError::bad_input(field, "must be at most 200 characters")),
        }
    }

    /// The term as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ILIKE pattern (backslash is ILIKE's escape character).
    pub fn pattern(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 2);
        out.push('%');
        for c in self.0.chars() {
            if matches!(c, '%' | '_' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('%');
        out
    }
}

impl fmt::Debug for SearchTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SearchTerm(..)")
    }
}

/// A person's name: 1 to 200 characters after trimming, no control characters.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        if s.chars().any(char::is_control) {
            return Err(AppError::bad_input(field, "must not contain control characters"));
        }
        match s.chars().count() {
            1..=200 => Ok(Self(s.to_owned())),
            _ => Err(AppError::bad_input(field, "must be 1 to 200 characters")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonName(..)")
    }
}

/// An email address of the usual syntax (`local@domain.tld`), kept as typed
/// and compared through its lower-cased key.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    typed: String,
    key: String,
}

impl Email {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        let bad = || AppError::bad_input(field, "must be an email address like name@example.org");
        if s.len() > 254 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.chars().all(char::is_alphabetic) && tld.chars().count() >= 2);
        if !(local_ok && domain_ok) {
            return Err(bad());
        }
        Ok(Self {
            typed: s.to_owned(),
            key: s.to_lowercase(),
        })
    }

    /// As the user typed it.
    pub fn as_str(&self) -> &str {
        &self.typed
    }

    /// The lower-cased form that uniqueness and look-ups use.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn into_inner(self) -> String {
        self.typed
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(..)")
    }
}

/// A new password: at least 8 characters and at most 72 bytes (bcrypt's
/// limit), without NUL.
pub struct Password(SecretString);

pub const PASSWORD_MAX_BYTES: usize = 72;

impl Password {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, AppError> {
        if raw.contains('\0') {
            return Err(AppError::bad_input(field, "must not contain NUL characters"));
        }
        if raw.chars().count() < 8 {
            return Err(AppError::bad_input(field, "must be at least 8 characters"));
        }
        if raw.len() > PASSWORD_MAX_BYTES {
            return Err(AppError::bad_input(field, "must be at most 72 bytes"));
        }
        Ok(Self(SecretString::new(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids() {
        assert!(parse_id("id", "6f1c2a52-4a8e-4d3b-9d43-3f1f5f0b9e11").is_ok());
        for bad in [
            "",
            "1",
            "garbage",
            "6f1c2a52-4a8e-4d3b-9d43-3f1f5f0b9e1",
            "'; DROP TABLE x; --",
        ] {
            assert!(parse_id("id", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        for ok in ["+1 (555) 010-9999", "0123456789", "1"] {
            assert!(Phone::parse("phone", ok).is_ok(), "{ok}");
        }
        for bad in ["", "abc", "+--", "1".repeat(33).as_str(), "555\0"] {
            assert!(Phone::parse("phone", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn search_terms_are_literal() {
        let t = SearchTerm::parse("search", " 50%_a\\b ").unwrap().unwrap();
        assert_eq!(t.pattern(), "%50\\%\\_a\\\\b%");
        assert!(SearchTerm::parse("search", "  ").unwrap().is_none());
        assert!(SearchTerm::parse("search", &"a".repeat(201)).is_err());
    }

    #[test]
    fn optional_text_bounds() {
        assert_eq!(optional_text("address", "  ", 1000).unwrap(), None);
        assert!(optional_text("address", &"a".repeat(1000), 1000).unwrap().is_some());
        assert!(optional_text("address", &"a".repeat(1001), 1000).is_err());
        assert!(optional_text("address", "a\0b", 1000).is_err());
    }

    #[test]
    fn birth_dates() {
        let today = chrono::Utc::now().date_naive();
        assert!(birth_date("dateOfBirth", today).is_ok());
        assert!(birth_date("dateOfBirth", today.succ_opt().unwrap()).is_err());
        assert!(birth_date("dateOfBirth", NaiveDate::from_ymd_opt(1800, 1, 1).unwrap()).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("name", "  Ann  ").unwrap().as_str(), "Ann");
        assert!(PersonName::parse("name", "   ").is_err());
        assert!(PersonName::parse("name", "").is_err());
        assert!(PersonName::parse("name", &"é".repeat(200)).is_ok());
        assert!(PersonName::parse("name", &"é".repeat(201)).is_err());
        assert!(PersonName::parse("name", "Ann\0").is_err());
        assert!(PersonName::parse("name", "Ann\nB").is_err());
    }

    #[test]
    fn emails_of_the_usual_syntax() {
        for ok in [
            "a@b.co",
            "Ann.Example+tag@Example.ORG",
            "x_y@sub.domain.example",
            "élise@exemple.fr",
        ] {
            assert!(Email::parse("email", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "@b.co",
            "a@",
            "a@b",
            "a@b.c",
            "a@@b.co",
            "a b@c.co",
            "a@b..co",
            ".a@b.co",
            "a.@b.co",
            "a..b@c.co",
            "a@-b.co",
            "a@b.co\0",
            "a@b.1",
            "<script>@x.co",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse("email", &format!("{}@b.co", "a".repeat(65))).is_err());
    }

    #[test]
    fn email_keys_ignore_case() {
        let a = Email::parse("email", "Ann@Example.ORG").unwrap();
        assert_eq!(a.as_str(), "Ann@Example.ORG");
        assert_eq!(a.key(), "ann@example.org");
        assert_eq!(Email::parse("email", "ÉLISE@x.fr").unwrap().key(), "élise@x.fr");
    }

    #[test]
    fn password_bounds() {
        assert!(Password::parse("password", "1234567").is_err());
        assert!(Password::parse("password", "12345678").is_ok());
        assert!(Password::parse("password", &"a".repeat(72)).is_ok());
        assert!(Password::parse("password", &"a".repeat(73)).is_err());
        // Eight characters of two bytes each: long enough, and 16 bytes.
        assert!(Password::parse("password", &"é".repeat(8)).is_ok());
        // 36 two-byte characters are 72 bytes; 37 are 74.
        assert!(Password::parse("password", &"é".repeat(36)).is_ok());
        assert!(Password::parse("password", &"é".repeat(37)).is_err());
        assert!(Password::parse("password", "1234\u{0}5678").is_err());
        assert_eq!(
            format!("{:?}", Password::parse("password", "secret-pass").unwrap()),
            "Password(..)"
        );
    }
}
