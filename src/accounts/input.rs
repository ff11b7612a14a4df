//! Account inputs as types that cannot hold bad values: a `PersonName`, an
//! `Email` and a `Password` are valid by construction.

use std::fmt;

use crate::{config::SecretString, error::AppError};

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
