//! Access tokens (HS256 JWTs, validated strictly) and refresh tokens (random,
//! stored only as a SHA-256 hash).

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::viewer::Role;
use crate::{error::AppError, viewer::Viewer};

pub const ISSUER: &str = "healthcare-api";
pub const AUDIENCE: &str = "healthcare-api";

/// Clock skew tolerated between replicas, in seconds.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// The user's token version when it was issued (absent: 0).
    #[serde(default)]
    pub ver: i32,
    /// The session it was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], access_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
        }
    }

    /// A signed access token for the user's session, and its lifetime in seconds.
    pub fn issue(&self, user_id: Uuid, role: Role, version: i32, session: Uuid) -> Result<(String, i64), AppError> {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(self.access_ttl.as_secs()).map_err(AppError::internal)?;
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            iat: now,
            exp: now + ttl,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            ver: version,
            sid: Some(session),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)?;
        Ok((token, ttl))
    }

    /// The viewer a bearer token proves, or `Unauthenticated`.
    pub fn verify(&self, token: &str) -> Result<Viewer, AppError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| AppError::Unauthenticated)?;
        let user_id = Uuid::parse_str(&data.claims.sub).map_err(|_| AppError::Unauthenticated)?;
        Ok(Viewer {
            user_id,
            role: data.claims.role,
            expires_at: data.claims.exp,
            token_version: data.claims.ver,
            session_id: data.claims.sid,
            request_id: None,
        })
    }
}

/// A new refresh token: what the client gets, and the hash that is stored.
pub fn new_refresh_token() -> Result<(String, [u8; 32]), AppError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AppError::internal(anyhow::anyhow!("no randomness: {e}")))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    Ok((token, Sha256::digest(bytes).into()))
}

/// The stored hash of a refresh token, or `None` if it cannot be one of ours.
pub fn refresh_token_hash(token: &str) -> Option<[u8; 32]> {
    if token.len() != 43 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let bytes: [u8; 32] = bytes.try_into().ok()?;
    Some(Sha256::digest(bytes).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> TokenKeys {
        TokenKeys::new(SECRET, Duration::from_secs(900))
    }

    fn sign(claims: &serde_json::Value, secret: &[u8], alg: Algorithm) -> String {
        jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn claims(exp_offset: i64) -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        serde_json::json!({
            "sub": Uuid::nil().to_string(), "role": "USER", "iat": now,
            "exp": now + exp_offset, "iss": ISSUER, "aud": AUDIENCE,
        })
    }

    #[test]
    fn a_token_it_issued_verifies() {
        let session = Uuid::new_v4();
        let (token, ttl) = keys().issue(Uuid::nil(), Role::Admin, 3, session).unwrap();
        assert_eq!(ttl, 900);
        let viewer = keys().verify(&token).unwrap();
        assert_eq!((viewer.user_id, viewer.role), (Uuid::nil(), Role::Admin));
        assert_eq!((viewer.token_version, viewer.session_id), (3, Some(session)));
        // A token from before versions and sessions: version 0, no session.
        let old = keys().verify(&sign(&claims(60), SECRET, Algorithm::HS256)).unwrap();
        assert_eq!((old.token_version, old.session_id), (0, None));
    }

    #[test]
    fn forged_and_stale_tokens_are_refused() {
        let k = keys();
        assert!(k.verify(&sign(&claims(60), SECRET, Algorithm::HS256)).is_ok());
        assert!(
            k.verify(&sign(
                &claims(60),
                b"another-secret-another-secret-xx",
                Algorithm::HS256
            ))
            .is_err()
        );
        assert!(k.verify(&sign(&claims(60), SECRET, Algorithm::HS512)).is_err());
        assert!(k.verify(&sign(&claims(-60), SECRET, Algorithm::HS256)).is_err());
        for (key, value) in [("aud", "someone-else"), ("iss", "someone-else")] {
            let mut c = claims(60);
            c[key] = value.into();
            assert!(k.verify(&sign(&c, SECRET, Algorithm::HS256)).is_err(), "{key}");
        }
        for key in ["exp", "aud", "iss", "sub"] {
            let mut c = claims(60);
            c.as_object_mut().unwrap().remove(key);
            assert!(k.verify(&sign(&c, SECRET, Algorithm::HS256)).is_err(), "{key}");
        }
        // alg "none": a header and claims with an empty signature.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims(60).to_string());
        assert!(k.verify(&format!("{header}.{body}.")).is_err());
        assert!(k.verify("garbage").is_err());
        assert!(k.verify("").is_err());
    }

    #[test]
    fn refresh_tokens_hash_and_reject_garbage() {
        let (token, hash) = new_refresh_token().unwrap();
        assert_eq!(refresh_token_hash(&token), Some(hash));
        assert_eq!(refresh_token_hash("garbage"), None);
        assert_eq!(refresh_token_hash(&"!".repeat(43)), None);
    }
}
