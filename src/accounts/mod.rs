//! Accounts: registration, login with throttling and a second factor,
//! refresh-token rotation, sessions, password changes, disabled users, the
//! signed-in user, and the first admin.

pub mod limits;
pub mod mfa;
pub mod password;
pub mod revocations;
pub mod tokens;
pub mod totp;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use self::{
    limits::AuthLimiter, mfa::SecondFactor, password::Passwords, revocations::Revocations, tokens::TokenKeys,
    totp::OneTimeCode,
};
use crate::{
    audit::{self, Action, EntityType, Event},
    db::{self, Db, accounts::UserRow},
    error::{AppError, AppResult, OnConstraint as _},
    http::client::Client,
    input::{Email, Password, PersonName, SearchTerm},
    paging::{Cursor, Limit, Page, SortField},
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
    /// Disabled by an admin: cannot sign in or refresh.
    #[serde(skip)]
    pub disabled: bool,
    /// Signs in with a second factor.
    #[serde(skip)]
    pub mfa_enabled: bool,
    /// The version the user's access tokens are issued under.
    #[serde(skip)]
    pub token_version: i32,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            email: row.email,
            role: Role::from_db(&row.role),
            created_at: row.created_at,
            disabled: row.disabled_at.is_some(),
            mfa_enabled: row.mfa_enabled_at.is_some(),
            token_version: row.token_version,
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

    pub fn disabled(&self) -> Option<bool> {
        self.private_shown.then_some(self.user.disabled)
    }

    pub fn mfa_enabled(&self) -> Option<bool> {
        self.private_shown.then_some(self.user.mfa_enabled)
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

/// A signed-in client: one chain of refresh tokens.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: Uuid,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// The session of the access token that asked.
    pub current: bool,
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
    /// The users whose older access tokens are refused.
    revocations: Arc<Revocations>,
    mfa: Arc<SecondFactor>,
}

/// The unique index on an account's email (in any letter case), and what
/// taking an email that has an account answers.
const USERS_EMAIL_KEY: &str = "users_email_key";
const EMAIL_TAKEN: AppError = AppError::Conflict {
    field: Some("email"),
    message: "an account with this email already exists",
};

impl Accounts {
    pub fn new(
        db: Db,
        keys: TokenKeys,
        passwords: Passwords,
        refresh_ttl: Duration,
        limiter: AuthLimiter,
        mfa: SecondFactor,
    ) -> Self {
        Self {
            db,
            keys,
            passwords,
            refresh_ttl,
            limiter: Arc::new(limiter),
            revocations: Arc::default(),
            mfa: Arc::new(mfa),
        }
    }

    /// Keeps this replica's view of revoked tokens fresh, until the
    /// accounts service is dropped.
    pub fn follow_revocations(&self, token_lifetime: Duration) {
        Revocations::spawn_poller(&self.revocations, self.db.clone(), token_lifetime);
    }

    /// The viewer a bearer token proves.
    pub fn authenticate(&self, bearer: &str) -> AppResult<Viewer> {
        let viewer = self.keys.verify(bearer)?;
        if self.revocations.allows(viewer.user_id, viewer.token_version) {
            Ok(viewer)
        } else {
            Err(AppError::Unauthenticated)
        }
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
        let client = client.clone();
        conn.transaction(async move |tx| {
            let client = &client;
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
            this.start_session(tx, user, None, client).await
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        totp_code: Option<&str>,
        client: &Client,
        request_id: Option<&str>,
    ) -> AppResult<AuthSession> {
        const WRONG: AppError = AppError::BadCredentials("wrong email or password");
        const DISABLED: AppError = AppError::BadCredentials("this account is disabled");
        const WRONG_CODE: AppError = AppError::BadCredentials(
            "the code is neither the current code of your authenticator app nor an unused recovery code",
        );
        self.limiter.check(client.address)?;
        let email = Email::parse("email", email)?;
        // A blank code is no code: a form's field left empty.
        let code = match totp_code {
            None => None,
            Some(raw) => OneTimeCode::parse_optional("totpCode", raw)?,
        };
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
        let ok = self.passwords.verify(client.address, password, hash).await?;
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
        let client = client.clone();
        conn.transaction(async move |tx| match row {
            Some(row) if ok && row.disabled_at.is_some() => {
                audit::record(tx, &[event(Action::LoginFailed)]).await?;
                Ok(Err(DISABLED))
            }
            // The password was right; the second factor is missing.
            Some(row) if ok && row.mfa_enabled_at.is_some() && code.is_none() => Ok(Err(AppError::MfaRequired)),
            Some(row) if ok => {
                if let Some(code) = &code
                    && row.mfa_enabled_at.is_some()
                    && !this.mfa.accept(tx, row.id, code).await?
                {
                    db::accounts::record_login_failure(tx, email.key(), since).await?;
                    audit::record(tx, &[event(Action::LoginFailed)]).await?;
                    return Ok(Err(WRONG_CODE));
                }
                audit::record(tx, &[event(Action::LoginSucceeded)]).await?;
                this.start_session(tx, row.into(), None, &client).await.map(Ok)
            }
            _ => {
                db::accounts::record_login_failure(tx, email.key(), since).await?;
                audit::record(tx, &[event(Action::LoginFailed)]).await?;
                Ok(Err(WRONG))
            }
        })
        .await?
    }

    /// Exchanges a live refresh token for a new pair in its session, retiring
    /// it. Presenting a retired (already exchanged) token again ends every
    /// session of its user; a revoked one is just refused.
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
        let client = client.clone();
        let outcome = conn
            .transaction(async move |tx| {
                let Some(token) = db::accounts::lock_refresh_token(tx, &hash).await? else {
                    return Ok(Outcome::Refused);
                };
                if token.used_at.is_some() {
                    // A token already exchanged, presented again: one of
                    // the two holders is not the user.
                    let revoked = db::accounts::end_sessions(tx, token.user_id, None).await?;
                    tracing::warn!(user_id = %token.user_id, revoked, "a retired refresh token was presented again");
                    return Ok(Outcome::Reused);
                }
                // A session that was ended (logout, revokeSession, a password
                // change on another client) just stays ended.
                if token.revoked_at.is_some() || token.expires_at <= Utc::now() {
                    return Ok(Outcome::Refused);
                }
                let Some(user) = db::accounts::find_user(tx, token.user_id).await? else {
                    return Ok(Outcome::Refused);
                };
                if user.disabled_at.is_some() {
                    return Ok(Outcome::Refused);
                }
                db::accounts::retire_refresh_token(tx, token.id).await?;
                match this
                    .start_session(tx, user.into(), Some(token.family_id), &client)
                    .await
                {
                    Ok(session) => Ok::<_, AppError>(Outcome::Renewed(session)),
                    Err(AppError::BadCredentials(_)) => Ok(Outcome::Refused),
                    Err(err) => Err(err),
                }
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
        let mut conn = self.db.conn().await?;
        conn.transaction(async move |tx| {
            // The token's session ends with it.
            let Some((user, session)) = db::accounts::revoke_live_refresh_token(tx, &hash).await? else {
                return Ok(false);
            };
            db::accounts::end_session(tx, user, session).await?;
            Ok(true)
        })
        .await
    }

    /// The viewer's live sessions, newest first.
    pub async fn sessions(&self, viewer: &Viewer) -> AppResult<Vec<Session>> {
        let rows = self
            .db
            .run(async |conn| Ok(db::accounts::live_sessions(conn, viewer.user_id).await?))
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| Session {
                current: viewer.session_id == Some(row.id),
                id: row.id,
                user_agent: row.user_agent,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
            })
            .collect())
    }

    /// Ends one of the viewer's own sessions: its refresh token stops
    /// working. True when it was live; another user's session is treated
    /// like one that does not exist.
    pub async fn revoke_session(&self, viewer: &Viewer, id: Uuid) -> AppResult<bool> {
        let mut conn = self.db.conn().await?;
        let viewer = viewer.clone();
        conn.transaction(async move |tx| {
            let ended = db::accounts::end_session(tx, viewer.user_id, id).await?;
            if ended {
                let event = Event::by(&viewer, Action::SessionRevoked, EntityType::User, viewer.user_id);
                audit::record(tx, &[event]).await?;
            }
            Ok(ended)
        })
        .await
    }

    /// Ends every session of the viewer, this one included, and refuses the
    /// access tokens already issued (within `revocations::POLL_INTERVAL`
    /// on the other replicas, at once on this one).
    pub async fn logout_everywhere(&self, viewer: &Viewer) -> AppResult<bool> {
        let mut conn = self.db.conn().await?;
        let moved = viewer.clone();
        let version = conn
            .transaction(async move |tx| {
                let version = db::accounts::raise_token_version(tx, moved.user_id).await?;
                db::accounts::end_sessions(tx, moved.user_id, None).await?;
                let event = Event::by(&moved, Action::SessionRevoked, EntityType::User, moved.user_id);
                audit::record(tx, &[event]).await?;
                Ok::<_, AppError>(version)
            })
            .await?;
        self.revocations.record_now(viewer.user_id, version, false);
        Ok(true)
    }

    /// Changes the viewer's password: every other session ends, access
    /// tokens issued before are refused, and this client gets a fresh pair
    /// in its session.
    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
        viewer: &Viewer,
        current: &str,
        new: &str,
        client: &Client,
    ) -> AppResult<AuthSession> {
        self.limiter.check(client.address)?;
        self.confirm_own_password(viewer, current, "currentPassword", client)
            .await?;
        let password = Password::parse("newPassword", new)?;
        if password.expose() == current {
            return Err(AppError::bad_input(
                "newPassword",
                "must differ from the current password",
            ));
        }
        let hash = self.passwords.hash(client.address, password.expose()).await?;
        let mut conn = self.db.conn().await?;
        let (this, moved, client) = (self.clone(), viewer.clone(), client.clone());
        let session = conn
            .transaction(async move |tx| {
                let user = mfa::lock_own(tx, moved.user_id).await?;
                db::accounts::set_password_hash(tx, moved.user_id, &hash).await?;
                let version = db::accounts::raise_token_version(tx, moved.user_id).await?;
                // Every other session ends; this one's older refresh tokens too.
                db::accounts::end_sessions(tx, moved.user_id, moved.session_id).await?;
                if let Some(current) = moved.session_id {
                    db::accounts::revoke_session_tokens(tx, current).await?;
                }
                let event = Event::by(&moved, Action::PasswordChanged, EntityType::User, moved.user_id);
                audit::record(tx, &[event]).await?;
                let user = User {
                    token_version: version,
                    ..User::from(user)
                };
                match this.start_session(tx, user.clone(), moved.session_id, &client).await {
                    Err(AppError::BadCredentials(_)) => this.start_session(tx, user, None, &client).await,
                    other => other,
                }
            })
            .await?;
        self.revocations
            .record_now(viewer.user_id, session.user.token_version, false);
        Ok(session)
    }

    /// Checks the viewer's own password before a change to their account:
    /// throttled like logins, and a wrong one counts as a failed login
    /// (`BAD_USER_INPUT` on `field`). Returns the key failures are counted
    /// under.
    async fn confirm_own_password(
        &self,
        viewer: &Viewer,
        password: &str,
        field: &'static str,
        client: &Client,
    ) -> AppResult<String> {
        let since = Utc::now() - THROTTLE_WINDOW;
        let (hash, email_key, failures) = self
            .db
            .run(async |conn| {
                let (key, hash) = db::accounts::email_key_and_password_hash(conn, viewer.user_id)
                    .await?
                    .ok_or(AppError::Unauthenticated)?;
                let failures = db::accounts::count_login_failures(conn, &key, since).await?;
                Ok((Some(hash), key, failures))
            })
            .await?;
        if failures >= THROTTLE_MAX_FAILURES {
            return Err(AppError::TooManyRequests);
        }
        let ok = self.passwords.verify(client.address, password, hash).await?;
        if !ok {
            let (moved, key) = (viewer.clone(), email_key.clone());
            let mut conn = self.db.conn().await?;
            conn.transaction(async move |tx| Self::record_failed_check(tx, &moved, &key).await)
                .await?;
            return Err(AppError::BadInput {
                field,
                message: "is not your current password",
            });
        }
        Ok(email_key)
    }

    /// A wrong password or code from a signed-in user: a failed login.
    async fn record_failed_check(tx: &mut AsyncPgConnection, viewer: &Viewer, email_key: &str) -> AppResult<()> {
        let since = Utc::now() - THROTTLE_WINDOW;
        db::accounts::record_login_failure(tx, email_key, since).await?;
        let event = Event::by(viewer, Action::LoginFailed, EntityType::User, viewer.user_id);
        audit::record(tx, &[event]).await
    }

    /// Admins only: disables an account (it cannot sign in or refresh, its
    /// sessions end and its access tokens are refused) or enables it again.
    pub async fn set_user_disabled(&self, viewer: &Viewer, id: Uuid, disabled: bool) -> AppResult<Seen> {
        viewer.require_admin()?;
        if disabled && id == viewer.user_id {
            return Err(AppError::bad_input("id", "an admin cannot disable their own account"));
        }
        let mut conn = self.db.conn().await?;
        let moved = viewer.clone();
        let row = conn
            .transaction(async move |tx| {
                let row = db::accounts::set_disabled(tx, id, disabled)
                    .await?
                    .ok_or(AppError::NotFound)?;
                if disabled {
                    db::accounts::end_sessions(tx, id, None).await?;
                }
                let action = if disabled {
                    Action::UserDisabled
                } else {
                    Action::UserEnabled
                };
                audit::record(tx, &[Event::by(&moved, action, EntityType::User, id)]).await?;
                Ok::<_, AppError>(row)
            })
            .await?;
        let user = User::from(row);
        self.revocations.record_now(user.id, user.token_version, user.disabled);
        Ok(Seen::by(viewer, Arc::new(user)))
    }

    /// Admins only: a page of users by name; `search` matches name or email.
    pub async fn users(
        &self,
        viewer: &Viewer,
        limit: Limit,
        after: Option<Cursor>,
        search: Option<&SearchTerm>,
    ) -> AppResult<(Page<Seen>, i64)> {
        viewer.require_admin()?;
        if after.as_ref().is_some_and(|c| !matches!(c, Cursor::Name(..))) {
            return Err(AppError::bad_input("after", "is not a cursor of this list"));
        }
        let pattern = search.map(SearchTerm::pattern);
        let (rows, total) = self
            .db
            .run(async |conn| {
                let rows = db::accounts::list_users(conn, pattern.as_deref(), after.as_ref(), limit.get() + 1).await?;
                let total = db::accounts::count_users(conn, pattern.as_deref()).await?;
                Ok((rows, total))
            })
            .await?;
        let page = Page::from_rows(rows, limit, after.is_some(), |row| {
            Cursor::of(SortField::Name, &row.name, row.created_at, row.id)
        });
        Ok((page.map(|row| Seen::by(viewer, Arc::new(User::from(row)))), total))
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

    /// Starts a session (`None`) or carries one on with a refresh: issues an
    /// access token and a new refresh token in the session. A session that
    /// has ended cannot be carried on (`BadCredentials`).
    async fn start_session(
        &self,
        tx: &mut AsyncPgConnection,
        user: User,
        session: Option<Uuid>,
        client: &Client,
    ) -> AppResult<AuthSession> {
        let ttl = chrono::Duration::from_std(self.refresh_ttl).map_err(AppError::internal)?;
        let expires_at = Utc::now() + ttl;
        let session = match session {
            None => db::accounts::insert_session(tx, user.id, client.user_agent.as_deref(), expires_at).await?,
            Some(id) if db::accounts::touch_session(tx, id, expires_at).await? => id,
            Some(_) => return Err(AppError::BadCredentials("the session has ended")),
        };
        let (access_token, expires_in) = self.keys.issue(user.id, user.role, user.token_version, session)?;
        let (refresh_token, hash) = tokens::new_refresh_token()?;
        db::accounts::insert_refresh_token(tx, user.id, session, &hash, expires_at).await?;
        Ok(AuthSession {
            access_token,
            expires_in,
            refresh_token,
            user,
        })
    }
}
