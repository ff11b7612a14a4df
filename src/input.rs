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

    /// For a field that cannot be cleared: `None` keeps it, `Some` sets it.
    pub fn required(self, field: &'static str) -> Result<Option<T>, AppError> {
        match self {
            Self::Keep => Ok(None),
            Self::Clear => Err(AppError::bad_input(field, "cannot be cleared")),
            Self::Set(v) => Ok(Some(v)),
        }
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

impl<T> Change<Option<T>> {
    /// A value that parsed to no value (blank text) clears the field.
    pub fn flatten(self) -> Change<T> {
        match self {
            Self::Keep => Change::Keep,
            Self::Clear | Self::Set(None) => Change::Clear,
            Self::Set(Some(v)) => Change::Set(v),
        }
    }
}

/// An optional text field of a new record, absent, blank or a value: `parse`
/// says what a given value is (`None` for blank).
pub fn optional(
    raw: Option<String>,
    parse: impl FnOnce(&str) -> Result<Option<String>, AppError>,
) -> Result<Option<String>, AppError> {
    Ok(raw.as_deref().map(parse).transpose()?.flatten())
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

// Each rule below is also written as a regular expression (ECMA 262, as
// OpenAPI reads it) for the REST API's OpenAPI document; a unit test checks
// that each parser accepts exactly what its pattern matches. Lengths count
// characters of the value as sent; values are stored trimmed.

/// Free text (`optional_text`, `SearchTerm`): anything but NUL.
pub const TEXT_PATTERN: &str = r"^[^\x00]*$";

/// A name or label: no control characters, at least one character that is
/// not white space (Unicode White_Space, which `str::trim` removes).
pub const NAME_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$";

/// Unicode White_Space as a character class's contents: what `str::trim`
/// removes.
macro_rules! white_space {
    () => {
        r"\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
    };
}

/// The letters beyond ASCII that an email address may hold (`email_letter`),
/// as a character class's contents.
macro_rules! email_unicode {
    () => {
        r"\u00A1-\u167F\u1681-\u1FFF\u200B-\u2027\u202A-\u202E\u2030-\u205E\u2060-\u2FFF\u3001-\uD7FF\uE000-\uFFFF"
    };
}

/// An email address as `Email::parse` takes it, without anchors.
macro_rules! email_address {
    () => {
        concat!(
            r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~",
            email_unicode!(),
            r"-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~",
            email_unicode!(),
            r"-]+)*@(?:[A-Za-z0-9",
            email_unicode!(),
            r"](?:[A-Za-z0-9",
            email_unicode!(),
            r"-]{0,61}[A-Za-z0-9",
            email_unicode!(),
            r"])?\.)+[A-Za-z",
            email_unicode!(),
            r"]{2,63}"
        )
    };
}

/// An email address; see `Email::parse`.
pub const EMAIL_PATTERN: &str = concat!("^", email_address!(), "$");

/// An optional email address: an address, or only white space (no value).
pub const OPTIONAL_EMAIL_PATTERN: &str = concat!("^(?:[", white_space!(), "]*|", email_address!(), ")$");

/// An optional phone number: digits, spaces and `+-()` with at least one
/// digit, or only white space (no value).
pub const PHONE_PATTERN: &str = concat!(r"^(?:[0-9 +()-]*[0-9][0-9 +()-]*|[", white_space!(), "]*)$");

/// An optional second-factor code (`accounts::totp::OneTimeCode`): six
/// digits or a 16-character recovery code (base32, any letter case), with
/// spaces and dashes anywhere, or only white space (no code).
pub const TOTP_CODE_PATTERN: &str = concat!(
    "^(?:[",
    white_space!(),
    "]*|[ -]*(?:[0-9][ -]*){6}|[ -]*(?:[A-Za-z2-7][ -]*){16})$"
);

/// How long a free-text field may be, and the message that says so.
#[derive(Debug, Clone, Copy)]
pub struct TextLimit {
    pub max: usize,
    too_long: &'static str,
}

impl TextLimit {
    pub const fn new(max: usize, too_long: &'static str) -> Self {
        Self { max, too_long }
    }
}

/// Free text within `limit`, without NUL; only white space is no value
/// (`None`). Stored trimmed.
pub fn optional_text(field: &'static str, raw: &str, limit: TextLimit) -> Result<Option<String>, AppError> {
    reject_nul(field, raw)?;
    if raw.chars().count() > limit.max {
        return Err(AppError::bad_input(field, limit.too_long));
    }
    let s = raw.trim();
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

/// A required one-line label (a name, a specialization): 1 to 200 characters.
pub fn label(field: &'static str, raw: &str) -> Result<String, AppError> {
    PersonName::parse(field, raw).map(|n| n.0)
}

/// A phone number: digits, spaces and `+-()`, at most 32 characters, with at
/// least one digit. Stored trimmed.
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, AppError> {
        let ok = raw.chars().count() <= 32
            && raw.chars().any(|c| c.is_ascii_digit())
            && raw.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c));
        if ok {
            Ok(Self(raw.trim().to_owned()))
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

/// An optional email address: only white space is no value (`None`).
pub fn optional_email(field: &'static str, raw: &str) -> Result<Option<String>, AppError> {
    if raw.chars().count() <= 254 && raw.trim().is_empty() {
        return Ok(None);
    }
    Email::parse(field, raw).map(|e| Some(e.into_inner()))
}

/// An optional phone number: only white space is no value (`None`).
pub fn optional_phone(field: &'static str, raw: &str) -> Result<Option<String>, AppError> {
    if raw.chars().count() <= 32 && raw.trim().is_empty() {
        return Ok(None);
    }
    Phone::parse(field, raw).map(|p| Some(p.into_inner()))
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

/// `birth_date`'s rule on `today` as a pattern of `YYYY-MM-DD` dates, for
/// the OpenAPI document: every date from 1850-01-01 to `today`, except
/// 29 February (left out to keep the pattern short; the server takes it in
/// leap years).
pub fn birth_date_pattern(today: NaiveDate) -> String {
    use chrono::Datelike as _;
    fn days(month: u32, last: u32) -> String {
        let max = match month {
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
        .min(last);
        let list: Vec<String> = (1..=max).map(|d| format!("{d:02}")).collect();
        format!("{month:02}-(?:{})", list.join("|"))
    }
    let full_year: Vec<String> = (1..=12).map(|m| days(m, 31)).collect();
    let full_year = full_year.join("|");
    let mut branches = Vec::new();
    if today.year() > 1850 {
        let years: Vec<String> = (1850..today.year()).map(|y| y.to_string()).collect();
        branches.push(format!("(?:{})-(?:{full_year})", years.join("|")));
    }
    let this_year: Vec<String> = (1..today.month())
        .map(|m| days(m, 31))
        .chain([days(today.month(), today.day())])
        .collect();
    branches.push(format!("{}-(?:{})", today.year(), this_year.join("|")));
    format!("^(?:{})$", branches.join("|"))
}

/// A search string: matched as a case-insensitive substring, with `%` and `_`
/// taken literally. Empty means no filter.
#[derive(Clone, PartialEq, Eq)]
pub struct SearchTerm(String);

impl SearchTerm {
    pub fn parse(field: &'static str, raw: &str) -> Result<Option<Self>, AppError> {
        reject_nul(field, raw)?;
        if raw.chars().count() > 200 {
            return Err(AppError::bad_input(field, "must be at most 200 characters"));
        }
        let s = raw.trim();
        Ok((!s.is_empty()).then(|| Self(s.to_owned())))
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

/// A person's name: 1 to 200 characters, not all white space, no control
/// characters. Stored trimmed.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, AppError> {
        if raw.chars().any(char::is_control) {
            return Err(AppError::bad_input(field, "must not contain control characters"));
        }
        let s = raw.trim();
        if s.is_empty() || raw.chars().count() > 200 {
            return Err(AppError::bad_input(field, "must be 1 to 200 characters"));
        }
        Ok(Self(s.to_owned()))
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
/// and compared through its lower-cased key. The local part is dot-separated
/// atoms of letters, digits and ``!#$%&'*+/=?^_`{|}~-``; the domain has two
/// or more labels of letters, digits and inner hyphens (at most 63 each), the
/// last of at least two letters. Characters beyond ASCII count as letters,
/// except white space, controls and those outside the Basic Multilingual
/// Plane. At most 254 characters, with no white space around it.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    typed: String,
    key: String,
}

/// A letter or digit of an email address: ASCII letters and digits, and any
/// character of the Basic Multilingual Plane beyond ASCII that is neither a
/// control nor white space.
fn email_letter(c: char) -> bool {
    c.is_ascii_alphanumeric() || (('\u{A1}'..='\u{FFFF}').contains(&c) && !c.is_whitespace())
}

impl Email {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, AppError> {
        let s = raw;
        let bad = || AppError::bad_input(field, "must be an email address like name@example.org");
        if s.chars().count() > 254 {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let local_ok = local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| email_letter(c) || "!#$%&'*+-/=?^_`{|}~".contains(c))
        });
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                (1..=63).contains(&l.chars().count())
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| email_letter(c) || c == '-')
            })
            && labels.last().is_some_and(|tld| {
                tld.chars().all(|c| email_letter(c) && !c.is_ascii_digit()) && tld.chars().count() >= 2
            });
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
/// limit), without NUL, and not a commonly used one.
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
        if crate::accounts::password::is_common(raw) {
            return Err(AppError::bad_input(
                field,
                "is a commonly used password, the first that attackers try: choose another",
            ));
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
        const LIMIT: TextLimit = TextLimit::new(1000, "must be at most 1,000 characters");
        assert_eq!(optional_text("address", "  ", LIMIT).unwrap(), None);
        assert!(optional_text("address", &"a".repeat(1000), LIMIT).unwrap().is_some());
        let too_long = optional_text("address", &"a".repeat(1001), LIMIT).unwrap_err();
        assert_eq!(too_long.to_string(), "address: must be at most 1,000 characters");
        assert!(optional_text("address", "a\0b", LIMIT).is_err());
    }

    #[test]
    fn birth_dates() {
        let today = chrono::Utc::now().date_naive();
        assert!(birth_date("dateOfBirth", today).is_ok());
        assert!(birth_date("dateOfBirth", today.succ_opt().unwrap()).is_err());
        assert!(birth_date("dateOfBirth", NaiveDate::from_ymd_opt(1800, 1, 1).unwrap()).is_err());
    }

    #[test]
    fn the_birth_date_pattern_follows_the_rule() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
        let re = regex::Regex::new(&birth_date_pattern(today)).unwrap();
        let mut day = NaiveDate::from_ymd_opt(1849, 12, 1).unwrap();
        let end = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        while day <= end {
            let text = day.format("%Y-%m-%d").to_string();
            let by_rule =
                date("d", &text).is_ok_and(|d| d >= NaiveDate::from_ymd_opt(1850, 1, 1).unwrap() && d <= today);
            let leap_day = text.ends_with("-02-29");
            assert_eq!(re.is_match(&text), by_rule && !leap_day, "{text}");
            day = day.succ_opt().unwrap();
        }
        for bad in ["2026-02-30", "2025-13-01", "2025-1-01", "x", "2025-01-01 "] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("name", "  Ann  ").unwrap().as_str(), "Ann");
        assert!(PersonName::parse("name", &format!(" {}", "é".repeat(200))).is_err());
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
            " a@b.co",
            "a@b.co ",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse("email", &format!("{}@b.co", "a".repeat(249))).is_ok());
        assert!(Email::parse("email", &format!("{}@b.co", "a".repeat(250))).is_err());
    }

    /// A small deterministic generator of strings made of `tokens`.
    fn samples(tokens: &[&str], count: usize, max_tokens: u64) -> Vec<String> {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let n = next() % (max_tokens + 1);
                (0..n)
                    .map(|_| tokens[(next() % tokens.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    /// Each pattern of the OpenAPI document matches exactly what its parser
    /// accepts.
    fn agrees(pattern: &str, max_chars: usize, parse: impl Fn(&str) -> bool, tokens: &[&str], max_tokens: u64) {
        let re = regex::Regex::new(pattern).unwrap();
        // At the length limit and one past it, padded with spaces around a
        // value each parser takes.
        let seed = tokens.iter().copied().find(|t| parse(t)).unwrap_or("1");
        for len in [max_chars, max_chars + 1] {
            let pad = len.saturating_sub(seed.chars().count());
            let s = format!("{seed}{}", " ".repeat(pad));
            let by_schema = re.is_match(&s) && s.chars().count() <= max_chars;
            assert_eq!(by_schema, parse(&s), "{pattern} at {len} characters");
        }
        for s in samples(tokens, 40_000, max_tokens) {
            let by_schema = re.is_match(&s) && s.chars().count() <= max_chars;
            assert_eq!(by_schema, parse(&s), "{pattern} on {s:?}");
        }
    }

    const ODD: &[&str] = &[
        " ", "\t", "\n", "\r", "\u{0}", "\u{1c}", "\u{7f}", "\u{85}", "\u{9f}", "\u{a0}", "\u{1680}", "\u{2003}",
        "\u{200b}", "\u{2028}", "\u{202f}", "\u{3000}", "\u{feff}", "😀", "é", "Ж",
    ];

    fn with(extra: &[&'static str]) -> Vec<&'static str> {
        ODD.iter().chain(extra).copied().collect()
    }

    #[test]
    fn patterns_agree_with_parsers() {
        let name_tokens = with(&["A", "bc", "Ann Lee"]);
        agrees(
            NAME_PATTERN,
            200,
            |s| PersonName::parse("name", s).is_ok(),
            &name_tokens,
            8,
        );
        agrees(
            NAME_PATTERN,
            200,
            |s| PersonName::parse("name", s).is_ok(),
            &with(&["abcdefghij"]),
            60,
        );
        agrees(
            TEXT_PATTERN,
            1000,
            |s| optional_text("address", s, TextLimit::new(1000, "")).is_ok(),
            &name_tokens,
            8,
        );
        agrees(
            TEXT_PATTERN,
            200,
            |s| SearchTerm::parse("search", s).is_ok(),
            &with(&["abcdefghij"]),
            60,
        );
        let phone_tokens = with(&["1", "+", "-", "(", ")", "a", "555 0100"]);
        agrees(
            PHONE_PATTERN,
            32,
            |s| optional_phone("phone", s).is_ok(),
            &phone_tokens,
            12,
        );
        let email_tokens = with(&[
            "a", "Z", "9", "-", ".", "@", "+", "_", "'", "co", "org", "..", "x.y", "@b.co", "<",
        ]);
        agrees(
            EMAIL_PATTERN,
            254,
            |s| Email::parse("email", s).is_ok(),
            &email_tokens,
            10,
        );
        agrees(
            OPTIONAL_EMAIL_PATTERN,
            254,
            |s| optional_email("email", s).is_ok(),
            &email_tokens,
            10,
        );
        agrees(
            TOTP_CODE_PATTERN,
            64,
            |s| crate::accounts::totp::OneTimeCode::parse_optional("totpCode", s).is_ok(),
            &with(&["1", "12", "123", "a", "Z", "7", "8", "-", "abcd", "1234", "abcd-efgh"]),
            8,
        );
        let long_label = format!("a@{}.co", "b".repeat(63));
        assert!(Email::parse("email", &long_label).is_ok());
        assert!(regex::Regex::new(EMAIL_PATTERN).unwrap().is_match(&long_label));
        let too_long_label = format!("a@{}.co", "b".repeat(64));
        assert!(Email::parse("email", &too_long_label).is_err());
        assert!(!regex::Regex::new(EMAIL_PATTERN).unwrap().is_match(&too_long_label));
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
        assert!(Password::parse("password", "1234567x").is_ok());
        assert!(Password::parse("password", &"a".repeat(72)).is_ok());
        assert!(Password::parse("password", &"a".repeat(73)).is_err());
        // Eight characters of two bytes each: long enough, and 16 bytes.
        assert!(Password::parse("password", &"é".repeat(8)).is_ok());
        // 36 two-byte characters are 72 bytes; 37 are 74.
        assert!(Password::parse("password", &"é".repeat(36)).is_ok());
        assert!(Password::parse("password", &"é".repeat(37)).is_err());
        assert!(Password::parse("password", "1234\u{0}5678").is_err());
        // Commonly used passwords, in any letter case.
        for common in ["12345678", "password1", "PassWord1", "iloveyou2"] {
            assert!(Password::parse("password", common).is_err(), "{common}");
        }
        assert_eq!(
            format!("{:?}", Password::parse("password", "secret-pass").unwrap()),
            "Password(..)"
        );
    }
}
