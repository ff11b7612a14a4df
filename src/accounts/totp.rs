//! The second factor's parts that need no database: TOTP secrets (RFC 6238:
//! SHA-1, 6 digits, 30-second steps, one step of skew either way), their
//! encryption at rest, recovery codes, and telling apart what a user typed.

use std::fmt;

use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use hkdf::Hkdf;
use qrcode::{QrCode, render::svg};
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// Seconds in one step: one code's lifetime.
pub const STEP_SECS: u64 = 30;
/// 160 bits, RFC 4226's recommendation.
const SECRET_BYTES: usize = 20;
const NONCE_BYTES: usize = 24;
/// Recovery codes handed out when MFA is turned on.
pub const RECOVERY_CODES: usize = 10;
/// 80 bits each: 16 base32 characters.
const RECOVERY_CODE_BYTES: usize = 10;
const RECOVERY_CODE_CHARS: usize = 16;
/// Longer input is refused before any other look at it.
const CODE_MAX_CHARS: usize = 64;

/// The key that encrypts TOTP secrets, derived from `MFA_ENCRYPTION_KEY`
/// with HKDF-SHA256 (so the setting's text is never the key itself).
#[derive(Clone)]
pub struct MfaKey {
    cipher: XChaCha20Poly1305,
}

impl MfaKey {
    pub fn derive(setting: &[u8]) -> anyhow::Result<Self> {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"healthcare-api"), setting)
            .expand(b"TOTP secret encryption, v1", &mut key)
            .map_err(|e| anyhow::anyhow!("MFA_ENCRYPTION_KEY could not be expanded: {e}"))?;
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
    }

    /// The secret encrypted for one user: a random nonce, then the
    /// ciphertext. Bound to the user's id, so that a sealed secret copied
    /// to another user's row does not open.
    pub fn seal(&self, user: Uuid, secret: &TotpSecret) -> AppResult<Vec<u8>> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| AppError::internal(anyhow::anyhow!("no randomness: {e}")))?;
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &secret.0,
                    aad: user.as_bytes(),
                },
            )
            .map_err(|_| AppError::internal(anyhow::anyhow!("a TOTP secret could not be encrypted")))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, user: Uuid, sealed: &[u8]) -> AppResult<TotpSecret> {
        const UNREADABLE: &str = "a TOTP secret could not be decrypted: was MFA_ENCRYPTION_KEY changed?";
        let (nonce, ciphertext) = sealed
            .split_at_checked(NONCE_BYTES)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!(UNREADABLE)))?;
        let nonce = XNonce::try_from(nonce).map_err(|_| AppError::internal(anyhow::anyhow!(UNREADABLE)))?;
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: user.as_bytes(),
                },
            )
            .map(TotpSecret)
            .map_err(|_| AppError::internal(anyhow::anyhow!(UNREADABLE)))
    }
}

/// A user's authenticator secret, in the clear: never printed.
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    pub fn generate() -> AppResult<Self> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| AppError::internal(anyhow::anyhow!("no randomness: {e}")))?;
        Ok(Self(bytes))
    }

    /// The authenticator this secret drives, labelled for the user's app.
    pub fn authenticator(&self, issuer: &str, account: &str) -> AppResult<Authenticator> {
        // A colon separates issuer from account in the URI's label.
        let account = account.replace(':', "_");
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(STEP_SECS)
            .with_secret(Secret::from(self.0.clone()))
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build()
            .map_err(|e| AppError::internal(anyhow::anyhow!("the TOTP parameters were refused: {e}")))?;
        Ok(Authenticator(totp))
    }
}

/// Checks codes of one secret.
pub struct Authenticator(Totp);

impl Authenticator {
    /// The step of `code` if it is the code of the step at `unix_secs`, or
    /// of the step before or after it.
    pub fn check(&self, code: &str, unix_secs: u64) -> Option<u64> {
        self.0.check(code, unix_secs)
    }

    /// The secret in base32, for typing into an app.
    pub fn secret_base32(&self) -> String {
        self.0.secret().to_base32()
    }

    /// The `otpauth://totp/...` URI, for a QR code.
    pub fn uri(&self) -> AppResult<String> {
        self.0
            .to_url()
            .map_err(|e| AppError::internal(anyhow::anyhow!("the otpauth URI could not be made: {e}")))
    }

    /// The URI as an SVG QR code.
    pub fn qr_code_svg(&self) -> AppResult<String> {
        let uri = self.uri()?;
        let code = QrCode::new(uri.as_bytes())
            .map_err(|e| AppError::internal(anyhow::anyhow!("the QR code could not be drawn: {e}")))?;
        Ok(code
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build())
    }
}

/// What a user typed as a second factor.
#[derive(Clone, PartialEq, Eq)]
pub enum OneTimeCode {
    /// Six digits from the authenticator app.
    Totp(String),
    /// One of the recovery codes, without its dashes, in lower case.
    Recovery(String),
}

impl fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Totp(_) => "Totp(..)",
            Self::Recovery(_) => "Recovery(..)",
        })
    }
}

impl OneTimeCode {
    /// A code where one may be left out: blank is none.
    pub fn parse_optional(field: &'static str, raw: &str) -> AppResult<Option<Self>> {
        if raw.chars().count() > CODE_MAX_CHARS {
            return Err(AppError::bad_input(field, "is too long for a code"));
        }
        if raw.trim().is_empty() {
            return Ok(None);
        }
        Self::parse(field, raw).map(Some)
    }

    /// Spaces and dashes are ignored, and letter case: apps show codes as
    /// `123 456`, recovery codes are handed out as `abcd-efgh-...`.
    pub fn parse(field: &'static str, raw: &str) -> AppResult<Self> {
        if raw.chars().count() > CODE_MAX_CHARS {
            return Err(AppError::bad_input(field, "is too long for a code"));
        }
        let code: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if code.is_empty() {
            return Err(AppError::bad_input(field, "must not be empty"));
        }
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Self::Totp(code));
        }
        if code.len() == RECOVERY_CODE_CHARS && code.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')) {
            return Ok(Self::Recovery(code));
        }
        Err(AppError::bad_input(
            field,
            "must be the 6-digit code of your authenticator app, or one of your recovery codes",
        ))
    }
}

/// New recovery codes, as handed out (`abcd-efgh-ijkl-mnop`), and the
/// hashes that are kept.
pub fn new_recovery_codes() -> AppResult<(Vec<String>, Vec<Vec<u8>>)> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut bytes = [0u8; RECOVERY_CODE_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| AppError::internal(anyhow::anyhow!("no randomness: {e}")))?;
        let plain = base32::encode(base32::Alphabet::Rfc4648Lower { padding: false }, &bytes);
        hashes.push(recovery_code_hash(&plain));
        let shown: Vec<String> = plain
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        codes.push(shown.join("-"));
    }
    Ok((codes, hashes))
}

/// What is kept of a recovery code (normalised as `OneTimeCode` does).
/// The codes carry 80 random bits each, so a fast hash is enough.
pub fn recovery_code_hash(normalised: &str) -> Vec<u8> {
    Sha256::digest(normalised.as_bytes()).to_vec()
}

/// Seconds since the Unix epoch, as the codes count them.
pub fn unix_now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MfaKey {
        MfaKey::derive(b"an MFA encryption key of at least thirty-two bytes").unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_for_its_user_only() {
        let secret = TotpSecret::generate().unwrap();
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = key().seal(alice, &secret).unwrap();
        assert!(!sealed.windows(secret.0.len()).any(|w| w == secret.0));
        assert_eq!(key().open(alice, &sealed).unwrap().0, secret.0);
        assert!(key().open(bob, &sealed).is_err());
        let other = MfaKey::derive(b"another MFA encryption key, also thirty-two bytes").unwrap();
        assert!(other.open(alice, &sealed).is_err());
        assert!(key().open(alice, &sealed[..10]).is_err());
    }

    #[test]
    fn codes_are_checked_within_one_step_either_way() {
        let secret = TotpSecret::generate().unwrap();
        let auth = secret.authenticator("Healthcare API", "ana@example.com").unwrap();
        let now = 1_800_000_015;
        let step = now / STEP_SECS;
        for offset in [-1i64, 0, 1] {
            let at = (step as i64 + offset) as u64 * STEP_SECS;
            let code = auth.0.generate(at).to_string();
            assert_eq!(auth.check(&code, now), Some(at / STEP_SECS), "offset {offset}");
        }
        for offset in [-3i64, -2, 2, 3] {
            let at = (step as i64 + offset) as u64 * STEP_SECS;
            let code = auth.0.generate(at).to_string();
            // A collision with a code of the window is one in a million.
            if (-1..=1).all(|o| auth.0.generate((step as i64 + o) as u64 * STEP_SECS).to_string() != code) {
                assert_eq!(auth.check(&code, now), None, "offset {offset}");
            }
        }
    }

    #[test]
    fn the_uri_names_issuer_account_and_parameters() {
        let secret = TotpSecret::generate().unwrap();
        let auth = secret.authenticator("Healthcare API", "a:b@example.com").unwrap();
        let uri = auth.uri().unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Healthcare%20API:a_b%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={}", auth.secret_base32())), "{uri}");
        assert!(auth.qr_code_svg().unwrap().contains("<svg"));
    }

    #[test]
    fn typed_codes_are_told_apart() {
        assert_eq!(
            OneTimeCode::parse("code", " 123 456 ").unwrap(),
            OneTimeCode::Totp("123456".into())
        );
        assert_eq!(
            OneTimeCode::parse("code", "ABCD-efgh-2345-67ab").unwrap(),
            OneTimeCode::Recovery("abcdefgh234567ab".into())
        );
        for bad in [
            "",
            "  ",
            "12345",
            "1234567",
            "12345a",
            "abcd-efgh-2345-67a1",
            "١٢٣٤٥٦",
            &"1".repeat(65),
        ] {
            assert!(OneTimeCode::parse("code", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn recovery_codes_are_distinct_and_parse_back_to_their_hash() {
        let (codes, hashes) = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        for (code, hash) in codes.iter().zip(&hashes) {
            assert_eq!(code.len(), 19, "{code}");
            let OneTimeCode::Recovery(plain) = OneTimeCode::parse("code", code).unwrap() else {
                panic!("{code} is not a recovery code");
            };
            assert_eq!(&recovery_code_hash(&plain), hash);
        }
        let unique: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
    }
}
