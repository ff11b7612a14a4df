//! Accounts: registration, login with throttling, refresh-token rotation,
//! logout, the signed-in user, and the first admin.

pub mod limits;
pub mod password;
pub mod tokens;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use self::{limits::AuthLimiter, password::Passwords, tokens::TokenKeys};
use crate::{
    audit::{self, Action, EntityType, Event},
    db::{self, Db, accounts::UserRow},
    error::{AppError, AppResult, OnConstraint as _},
    http::client::Client,
    input::{self, Email, Password, PersonName},
    viewer::{Role, Viewer},
};

/// Failed logins for one email within `THROTTLE_WINDOW` before it is throttled.
pub const THROTTLE_MAX_FAILURES: i64 = 5;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub name: String,
    /// Returned as the user typed it; compared case-insensitively.
    pub email: String,
    pub role: Role,
    #[serde(serialize_with = "crate::time::serialize")]
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            email: row.email,
            role: Role::from_db(&row.role),
            created_at: row.created_at,
        }
    }
}

/// A user as one viewer sees them. A user's email and role are private:
/// shown to that user and to admins, null for everyone else, on every path
/// that shows a user. This is the one place that decides it.
#[derive(Debug, Clone)]
pub struct Seen {
    user: Arc<User>,
    private_shown: bool,
}

impl Seen {
    pub fn by(viewer: &Viewer, user: Arc<User>) -> Self {
        Self {
            private_shown: viewer.is_admin() || viewer.user_id == user.id,
            user,
        }
    }

    /// The user of a session that was just started or refreshed, shown to
    /// the client that holds it.
    pub fn by_themself(user: User) -> Self {
        Self {
            user: Arc::new(user),
            private_shown: true,
        }
    }

    pub fn user(&self) -> &User {
        &self.user
    }

    pub fn email(&self) -> Option<&str> {
        self.private_shown.then_some(self.user.email.as_str())
    }

    pub fn role(&self) -> Option<Role> {
        self.private_shown.then_some(self.user.role)
    }
}

/// What register, login and refresh hand back.
#[derive(Debug, Clone)]
pub struct AuthSession {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub user: User,
}

/// Raw registration input, as either transport received it.
#[derive(Debug, Clone)]
pub struct Registration {
    pub name: String,
    pub email: String,
    pub password: String,
}

/// The accounts service: what every transport calls.
#[derive(Clone)]
pub struct Accounts {
    db: Db,
    keys: TokenKeys,
    passwords: Passwords,
    refresh_ttl: Duration,
    /// Register, login and refresh attempts per client address.
    limiter: Arc<AuthLimiter>,
}

/// The unique index on an account's email (in any letter case), and what
/// taking an email that has an account answers.
const USERS_EMAIL_KEY: &str = "users_email_key";
const EMAIL_TAKEN: AppError = AppError::Conflict {
    field: Some("email"),
    message: "an account with this email already exists",
};

impl Accounts {
    pub fn new(db: Db, keys: TokenKeys, passwords: Passwords, refresh_ttl: Duration, limiter: AuthLimiter) -> Self {
        Self {
            db,
            keys,
            passwords,
            refresh_ttl,
            limiter: Arc::new(limiter),
        }
    }

    /// The viewer a bearer token proves.
    pub fn authenticate(&self, bearer: &str) -> AppResult<Viewer> {
        self.keys.verify(bearer)
    }

    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        input: Registration,
        client: &Client,
        request_id: Option<&str>,
    ) -> AppResult<AuthSession> {
        self.limiter.check(client.address)?;
        let name = PersonName::parse("name", &input.name)?;
        let email = Email::parse("email", &input.email)?;
        let password = Password::parse("password", &input.password)?;
        let hash = self.passwords.hash(client.address, password.expose()).await?;
        let mut conn = self.db.conn().await?;
        let this = self.clone();
        conn.transaction(async move |tx| {
            let row = db::accounts::insert_user(
                tx,
                &db::accounts::NewUserRow {
                    name: name.as_str(),
                    email: email.as_str(),
                    email_key: email.key(),
                    password_hash: &hash,
                    role: Role::User.as_str(),
                },
            )
            .await
            .on_unique(USERS_EMAIL_KEY, EMAIL_TAKEN)?;
            let user: User = row.into();
            audit::record(
                tx,
                &[Event {
                    actor: Some(user.id),
                    action: Action::Register,
                    entity_type: EntityType::User,
                    entity_id: Some(user.id),
                    request_id,
                    others: Vec::new(),
                }],
            )
            .await?;
            this.start_session(tx, user, Uuid::new_v4()).await
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &Client,
        request_id: Option<&str>,
    ) -> AppResult<AuthSession> {
        const WRONG: AppError = AppError::BadCredentials("wrong email or password");
        self.limiter.check(client.address)?;
        let email = Email::parse("email", email)?;
        let since = Utc::now() - THROTTLE_WINDOW;
        let found = self
            .db
            .run(async |conn| {
                let failures = db::accounts::count_login_failures(conn, email.key(), since).await?;
                if failures >= THROTTLE_MAX_FAILURES {
                    return Err(AppError::TooManyRequests);
                }
                Ok(db::accounts::find_login(conn, email.key()).await?)
            })
            .await?;
        // bcrypt runs with no pooled connection held.
        let (row, hash) = match found {
            Some((row, hash)) => (Some(row), Some(hash)),
            None => (None, None),
        };
        let fits = !password.is_empty() && password.len() <= input::PASSWORD_MAX_BYTES && !password.contains('\0');
        let ok = self
            .passwords
            .verify(client.address, if fits { password } else { "" }, hash)
            .await?
            && fits;
        let user_id = row.as_ref().map(|r| r.id);
        let event = |action| Event {
            actor: user_id,
            action,
            entity_type: EntityType::User,
            entity_id: user_id,
            request_id,
            others: Vec::new(),
        };
        let mut conn = self.db.conn().await?;
        let this = self.clone();
        conn.transaction(async move |tx| match row {
            Some(row) if ok => {
                audit::record(tx, &[event(Action::LoginSucceeded)]).await?;
                this.start_session(tx, row.into(), Uuid::new_v4()).await.map(Ok)
            }
            _ => {
                db::accounts::record_login_failure(tx, email.key(), since).await?;
                audit::record(tx, &[event(Action::LoginFailed)]).await?;
                Ok(Err(WRONG))
            }
        })
        .await?
    }

    /// Exchanges a live refresh token for a new pair, retiring it. Presenting a
    /// retired or revoked token revokes every refresh token of its user.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str, client: &Client) -> AppResult<AuthSession> {
        const REFUSED: AppError = AppError::BadCredentials("the refresh token is not valid");
        self.limiter.check(client.address)?;
        let hash = tokens::refresh_token_hash(refresh_token).ok_or(REFUSED)?;
        enum Outcome {
            Renewed(AuthSession),
            Reused,
            Refused,
        }
        let mut conn = self.db.conn().await?;
        let this = self.clone();
        let outcome = conn
            .transaction(async move |tx| {
                let Some(token) = db::accounts::lock_refresh_token(tx, &hash).await? else {
                    return Ok(Outcome::Refused);
                };
                if token.used_at.is_some() || token.revoked_at.is_some() {
                    let revoked = db::accounts::revoke_all_refresh_tokens(tx, token.user_id).await?;
                    tracing::warn!(user_id = %token.user_id, revoked, "a retired refresh token was presented again");
                    return Ok(Outcome::Reused);
                }
                if token.expires_at <= Utc::now() {
                    return Ok(Outcome::Refused);
                }
                let Some(user) = db::accounts::find_user(tx, token.user_id).await? else {
                    return Ok(Outcome::Refused);
                };
                db::accounts::retire_refresh_token(tx, token.id).await?;
                let session = this.start_session(tx, user.into(), token.family_id).await?;
                Ok::<_, AppError>(Outcome::Renewed(session))
            })
            .await?;
        match outcome {
            Outcome::Renewed(session) => Ok(session),
            Outcome::Reused | Outcome::Refused => Err(REFUSED),
        }
    }

    /// Revokes a refresh token; true when it was live.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, refresh_token: &str) -> AppResult<bool> {
        let Some(hash) = tokens::refresh_token_hash(refresh_token) else {
            return Ok(false);
        };
        self.db
            .run(async |conn| Ok(db::accounts::revoke_live_refresh_token(conn, &hash).await?))
            .await
    }

    /// The signed-in user (who may have been deleted since the token was made).
    pub async fn me(&self, viewer: &Viewer) -> AppResult<Seen> {
        self.db
            .run(async |conn| {
                db::accounts::find_user(conn, viewer.user_id)
                    .await?
                    .map(|row| Seen::by(viewer, Arc::new(User::from(row))))
                    .ok_or(AppError::Unauthenticated)
            })
            .await
    }

    /// Users by id (for `createdBy`, `assignedBy` and `actor`).
    pub async fn by_ids(&self, ids: &[Uuid]) -> AppResult<std::collections::HashMap<Uuid, User>> {
        self.db
            .run(async |conn| {
                let rows = db::accounts::find_users(conn, ids).await?;
                Ok(rows.into_iter().map(|r| (r.id, User::from(r))).collect())
            })
            .await
    }

    /// Makes an admin account (from the command line only).
    pub async fn create_admin(&self, name: &str, email: &str, password: &str) -> AppResult<User> {
        let name = PersonName::parse("name", name)?;
        let email = Email::parse("email", email)?;
        let password = Password::parse("password", password)?;
        let hash = self.passwords.hash(Client::local().address, password.expose()).await?;
        self.db
            .run(async |conn| {
                let row = db::accounts::insert_user(
                    conn,
                    &db::accounts::NewUserRow {
                        name: name.as_str(),
                        email: email.as_str(),
                        email_key: email.key(),
                        password_hash: &hash,
                        role: Role::Admin.as_str(),
                    },
                )
                .await
                .on_unique(USERS_EMAIL_KEY, EMAIL_TAKEN)?;
                Ok(row.into())
            })
            .await
    }

    /// Issues an access token and a new refresh token in `family`.
    async fn start_session(&self, tx: &mut AsyncPgConnection, user: User, family: Uuid) -> AppResult<AuthSession> {
        let (access_token, expires_in) = self.keys.issue(user.id, user.role)?;
        let (refresh_token, hash) = tokens::new_refresh_token()?;
        let ttl = chrono::Duration::from_std(self.refresh_ttl).map_err(AppError::internal)?;
        db::accounts::insert_refresh_token(tx, user.id, family, &hash, Utc::now() + ttl).await?;
        Ok(AuthSession {
            access_token,
            expires_in,
            refresh_token,
            user,
        })
    }
}
