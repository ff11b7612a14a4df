//! Safe retries of creates: the `Idempotency-Key` header (the IETF httpapi
//! draft's meaning) on `createPatient`, `createDoctor`, `assignDoctor` and
//! their REST `POST`s.
//!
//! The same key from the same user within 24 hours answers with the record
//! the first request made, without a second write, on any replica and after
//! a failover: the key is claimed in PostgreSQL in the same transaction as
//! the write, so it is durable exactly when the record is. The same key with
//! a different operation or input is `CONFLICT`. A request that failed left
//! no key behind, so sending it again does the write.

use axum::http::HeaderMap;
use diesel_async::AsyncPgConnection;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    db::idempotency as store,
    error::{AppError, AppResult},
    viewer::Viewer,
};

pub const HEADER: &str = "idempotency-key";

/// The longest key accepted (a UUID is 36 characters).
const MAX_LEN: usize = 255;

/// What a key may be, as a regular expression (for the REST API's document).
pub const KEY_PATTERN: &str = r"^[!#-\[\]-~]([ !#-\[\]-~]*[!#-\[\]-~])?$";

const NOT_PRINTABLE: &str =
    "must be printable ASCII without quotes or backslashes, not starting or ending with a space";

/// A client's key for one create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key, if it sent one. The draft makes the header a
    /// structured-field string (`"…"`); the bare key is accepted too. Either
    /// way the key is 1 to 255 printable ASCII characters other than `"` and
    /// `\`, not starting or ending with a space, sent once (the pattern in
    /// `KEY_PATTERN`).
    pub fn from_headers(headers: &HeaderMap) -> AppResult<Option<Self>> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(bad("send one Idempotency-Key, not several"));
        }
        let text = value.to_str().map_err(|_| bad(NOT_PRINTABLE))?;
        let key = match text.strip_prefix('"') {
            Some(quoted) => quoted
                .strip_suffix('"')
                .ok_or_else(|| bad("a quoted key must end with a quote"))?,
            None => text,
        };
        if key.is_empty() {
            return Err(bad("must not be empty"));
        }
        if key.len() > MAX_LEN {
            return Err(bad("must be at most 255 characters"));
        }
        let printable = |b: u8| b.is_ascii_graphic() && b != b'"' && b != b'\\';
        let bytes = key.as_bytes();
        if !bytes.iter().all(|&b| printable(b) || b == b' ')
            || !printable(bytes[0])
            || !printable(bytes[bytes.len() - 1])
        {
            return Err(bad(NOT_PRINTABLE));
        }
        Ok(Some(Self(key.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn bad(message: &'static str) -> AppError {
    AppError::bad_input("Idempotency-Key", message)
}

/// A key as one operation uses it: the operation's name and a digest of its
/// input, which a later use of the key must match.
pub struct Keyed<'a> {
    key: &'a IdempotencyKey,
    operation: &'static str,
    fingerprint: [u8; 32],
}

impl<'a> Keyed<'a> {
    /// `input` is what the client sent (as either transport decodes it).
    pub fn new(key: &'a IdempotencyKey, operation: &'static str, input: &impl serde::Serialize) -> Self {
        let mut digest = Sha256::new();
        digest.update(operation.as_bytes());
        digest.update([0]);
        // Serialising plain input structs cannot fail.
        digest.update(serde_json::to_vec(input).unwrap_or_default());
        Self {
            key,
            operation,
            fingerprint: digest.finalize().into(),
        }
    }
}

/// What claiming a key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: do the write, then `settle` it.
    Fresh,
    /// The key was used for this same request, which made this record.
    Made(Uuid),
}

/// Claims the key in the caller's transaction (see `db::idempotency::claim`).
pub async fn claim(tx: &mut AsyncPgConnection, viewer: &Viewer, keyed: &Keyed<'_>) -> AppResult<Claim> {
    let user = viewer.user_id;
    let key = keyed.key.as_str();
    if store::claim(tx, user, key, keyed.operation, &keyed.fingerprint).await? {
        return Ok(Claim::Fresh);
    }
    let used = store::find(tx, user, key)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("an idempotency key in use was not found")))?;
    if used.operation != keyed.operation || used.fingerprint != keyed.fingerprint {
        return Err(AppError::Conflict {
            field: Some("Idempotency-Key"),
            message: "this Idempotency-Key was already used for a different request",
        });
    }
    used.entity_id
        .map(Claim::Made)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("an idempotency key was committed without its record")))
}

/// Records the record that the claimed key's write made, in the same
/// transaction.
pub async fn settle(tx: &mut AsyncPgConnection, viewer: &Viewer, keyed: &Keyed<'_>, made: Uuid) -> AppResult<()> {
    Ok(store::settle(tx, viewer.user_id, keyed.key.as_str(), made).await?)
}

/// The answer to a retry whose first request's record has since been
/// deleted.
pub fn made_and_gone() -> AppError {
    AppError::Conflict {
        field: Some("Idempotency-Key"),
        message: "the record this Idempotency-Key created has since been deleted",
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn parse(values: &[&[u8]]) -> AppResult<Option<IdempotencyKey>> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(HEADER, HeaderValue::from_bytes(value).unwrap());
        }
        IdempotencyKey::from_headers(&headers)
    }

    #[test]
    fn keys_are_one_printable_string() {
        assert_eq!(parse(&[]).unwrap(), None);
        let key = |s: &str| Some(IdempotencyKey(s.to_owned()));
        assert_eq!(parse(&[b"abc-123"]).unwrap(), key("abc-123"));
        assert_eq!(parse(&[b"\"8e03978e-40d5\""]).unwrap(), key("8e03978e-40d5"));
        assert_eq!(parse(&[&[b'k'; 255]]).unwrap(), key(&"k".repeat(255)));
        assert_eq!(parse(&[b"a b"]).unwrap(), key("a b"));
        for bad in [
            &b""[..],
            b"\"\"",
            b"   ",
            b" lead",
            b"trail ",
            b"a\"b",
            b"\"open",
            b"\"a\"b\"",
            b"\"a\\b\"",
            &[b'k'; 256],
            "cl\u{e9}".as_bytes(),
            b"tab\there",
        ] {
            let err = parse(&[bad]).unwrap_err();
            assert_eq!(err.field(), Some("Idempotency-Key"), "{bad:?}");
        }
        assert!(parse(&[b"a", b"b"]).is_err(), "two keys");
    }

    #[test]
    fn the_fingerprint_covers_operation_and_input() {
        let key = IdempotencyKey("k".into());
        let a = Keyed::new(&key, "createPatient", &serde_json::json!({ "name": "A" }));
        let same = Keyed::new(&key, "createPatient", &serde_json::json!({ "name": "A" }));
        let other_input = Keyed::new(&key, "createPatient", &serde_json::json!({ "name": "B" }));
        let other_operation = Keyed::new(&key, "createDoctor", &serde_json::json!({ "name": "A" }));
        assert_eq!(a.fingerprint, same.fingerprint);
        assert_ne!(a.fingerprint, other_input.fingerprint);
        assert_ne!(a.fingerprint, other_operation.fingerprint);
    }
}
