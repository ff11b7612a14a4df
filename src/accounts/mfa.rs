//! The second factor: enrolling an authenticator app, turning MFA on with
//! recovery codes, checking a code at login, and turning MFA off.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::{
    Accounts,
    totp::{self, MfaKey, OneTimeCode, TotpSecret},
};
use crate::{
    audit::{self, Action, EntityType, Event},
    config::SecretString,
    db,
    error::{AppError, AppResult},
    http::client::Client,
    viewer::Viewer,
};

/// The key TOTP secrets are sealed with, and the name apps show.
pub struct SecondFactor {
    key: MfaKey,
    issuer: String,
}

impl SecondFactor {
    pub fn new(encryption_key: &SecretString, issuer: &str) -> anyhow::Result<Self> {
        Ok(Self {
            key: MfaKey::derive(encryption_key.expose().as_bytes())?,
            issuer: issuer.to_owned(),
        })
    }

    /// Accepts a code of the user's: a TOTP code of the step before, at or
    /// after now, whose step is later than the last one accepted, or an
    /// unused recovery code, which is then used up. False for anything else.
    pub(super) async fn accept(&self, tx: &mut AsyncPgConnection, user: Uuid, code: &OneTimeCode) -> AppResult<bool> {
        match code {
            OneTimeCode::Totp(code) => {
                let Some(sealed) = db::accounts::totp_secret(tx, user).await? else {
                    return Ok(false);
                };
                let authenticator = self.key.open(user, &sealed)?.authenticator(&self.issuer, "")?;
                let Some(step) = authenticator.check(code, totp::unix_now()) else {
                    return Ok(false);
                };
                let step = i64::try_from(step).map_err(AppError::internal)?;
                Ok(db::accounts::use_totp_step(tx, user, step).await?)
            }
            OneTimeCode::Recovery(code) => {
                Ok(db::accounts::use_recovery_code(tx, user, &totp::recovery_code_hash(code)).await?)
            }
        }
    }
}

/// A new authenticator secret, shown once for the user's app.
#[derive(Debug, Clone)]
pub struct TotpEnrollment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_code_svg: String,
}

/// The signed-in user's own row, locked: their account changes happen one
/// at a time (one who has been deleted since their token was made is not
/// signed in any more).
pub(super) async fn lock_own(tx: &mut AsyncPgConnection, user_id: Uuid) -> AppResult<db::accounts::UserRow> {
    db::accounts::lock_user(tx, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)
}

const MFA_ALREADY_ON: AppError = AppError::Conflict {
    field: None,
    message: "MFA is already on: turn it off with disableTotp first",
};

impl Accounts {
    /// Starts (or starts again) enrolling an authenticator app: a new
    /// secret, kept sealed until `confirm_totp` turns MFA on with it.
    #[tracing::instrument(skip_all)]
    pub async fn begin_totp_enrollment(&self, viewer: &Viewer, client: &Client) -> AppResult<TotpEnrollment> {
        self.limiter.check(client.address)?;
        let secret = TotpSecret::generate()?;
        let sealed = self.mfa.key.seal(viewer.user_id, &secret)?;
        let user_id = viewer.user_id;
        let mut conn = self.db.conn().await?;
        let user = conn
            .transaction(async move |tx| {
                let user = lock_own(tx, user_id).await?;
                if user.mfa_enabled_at.is_some() {
                    return Err(MFA_ALREADY_ON);
                }
                db::accounts::put_totp_secret(tx, user_id, &sealed).await?;
                Ok(user)
            })
            .await?;
        let authenticator = secret.authenticator(&self.mfa.issuer, &user.email)?;
        Ok(TotpEnrollment {
            secret: authenticator.secret_base32(),
            otpauth_uri: authenticator.uri()?,
            qr_code_svg: authenticator.qr_code_svg()?,
        })
    }

    /// Turns MFA on with a current code of the app being enrolled; returns
    /// the recovery codes, which are kept only as hashes.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_totp(&self, viewer: &Viewer, code: &str, client: &Client) -> AppResult<Vec<String>> {
        const NOT_A_CODE: AppError = AppError::BadInput {
            field: "code",
            message: "is not the current code of the authenticator app being enrolled",
        };
        self.limiter.check(client.address)?;
        let code = match OneTimeCode::parse("code", code)? {
            code @ OneTimeCode::Totp(_) => code,
            OneTimeCode::Recovery(_) => {
                return Err(AppError::bad_input(
                    "code",
                    "must be the 6-digit code of your authenticator app",
                ));
            }
        };
        let (shown, hashes) = totp::new_recovery_codes()?;
        let (this, moved) = (self.clone(), viewer.clone());
        let mut conn = self.db.conn().await?;
        conn.transaction(async move |tx| {
            let user = lock_own(tx, moved.user_id).await?;
            if user.mfa_enabled_at.is_some() {
                return Err(MFA_ALREADY_ON);
            }
            if db::accounts::totp_secret(tx, moved.user_id).await?.is_none() {
                return Err(AppError::bad_input(
                    "code",
                    "no authenticator app is being enrolled: call beginTotpEnrollment first",
                ));
            }
            if !this.mfa.accept(tx, moved.user_id, &code).await? {
                return Err(NOT_A_CODE);
            }
            db::accounts::set_mfa(tx, moved.user_id, Some(&hashes)).await?;
            let event = Event::by(&moved, Action::MfaEnabled, EntityType::User, moved.user_id);
            audit::record(tx, &[event]).await
        })
        .await?;
        Ok(shown)
    }

    /// Turns MFA off, with the password and a current code or an unused
    /// recovery code; false when it was not on. A wrong password or code
    /// counts as a failed login.
    #[tracing::instrument(skip_all)]
    pub async fn disable_totp(&self, viewer: &Viewer, password: &str, code: &str, client: &Client) -> AppResult<bool> {
        self.limiter.check(client.address)?;
        let code = OneTimeCode::parse("code", code)?;
        let email_key = self.confirm_own_password(viewer, password, "password", client).await?;
        let (this, moved) = (self.clone(), viewer.clone());
        let mut conn = self.db.conn().await?;
        conn.transaction(async move |tx| {
            let user = lock_own(tx, moved.user_id).await?;
            if user.mfa_enabled_at.is_none() {
                return Ok(Ok(false));
            }
            if !this.mfa.accept(tx, moved.user_id, &code).await? {
                Self::record_failed_check(tx, &moved, &email_key).await?;
                return Ok(Err(AppError::bad_input(
                    "code",
                    "is neither a current code of your authenticator app nor an unused recovery code",
                )));
            }
            db::accounts::set_mfa(tx, moved.user_id, None).await?;
            let event = Event::by(&moved, Action::MfaDisabled, EntityType::User, moved.user_id);
            audit::record(tx, &[event]).await?;
            Ok::<_, AppError>(Ok(true))
        })
        .await?
    }
}
