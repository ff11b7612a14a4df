//! The accounts part of the schema: `me`, the viewer's sessions, the public
//! account mutations, changing one's password, the second factor, and the
//! admins' user list.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::{
    types::{self, DateTime, User},
    viewer,
};
use crate::{
    accounts::{self, Accounts, AuthSession, Registration, Seen, mfa},
    http::client::Client,
    input::{SearchTerm, parse_id},
    paging::{Cursor, Order},
};

#[derive(InputObject)]
pub struct RegisterInput {
    pub name: String,
    pub email: String,
    /// At least 8 characters and at most 72 bytes.
    #[graphql(secret)]
    pub password: String,
}

#[derive(InputObject)]
pub struct LoginInput {
    pub email: String,
    #[graphql(secret)]
    pub password: String,
    /// The current 6-digit code of the user's authenticator app, or one unused
    /// recovery code. Needed when the user has turned MFA on: without it login
    /// fails with MFA_REQUIRED; with a wrong one, UNAUTHENTICATED (a failed login).
    #[graphql(secret)]
    pub totp_code: Option<String>,
}

/// Returned by register, login and refreshToken.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// JWT; send it as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until accessToken expires.
    pub expires_in: i32,
    /// Opaque and single-use: refreshToken() returns a new one and retires this one.
    pub refresh_token: String,
    pub user: User,
}

impl From<AuthSession> for AuthPayload {
    fn from(s: AuthSession) -> Self {
        Self {
            access_token: s.access_token,
            token_type: "Bearer".to_owned(),
            expires_in: i32::try_from(s.expires_in).unwrap_or(i32::MAX),
            refresh_token: s.refresh_token,
            user: User(Seen::by_themself(s.user)),
        }
    }
}

/// A new authenticator secret, shown only by beginTotpEnrollment.
#[derive(SimpleObject)]
pub struct TotpEnrollment {
    /// Base32 secret, for typing into an authenticator app.
    pub secret: String,
    /// otpauth://totp/... URI (SHA1, 6 digits, 30 s), for a QR code.
    pub otpauth_uri: String,
    /// The same URI as an SVG QR code.
    pub qr_code_svg: String,
}

impl From<mfa::TotpEnrollment> for TotpEnrollment {
    fn from(e: mfa::TotpEnrollment) -> Self {
        Self {
            secret: e.secret,
            otpauth_uri: e.otpauth_uri,
            qr_code_svg: e.qr_code_svg,
        }
    }
}

/// A signed-in client: one chain of refresh tokens.
pub struct Session(accounts::Session);

#[Object]
impl Session {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
    async fn last_used_at(&self) -> DateTime {
        DateTime(self.0.last_used_at)
    }
    /// The User-Agent of the client that signed in, cut to 200 characters.
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }
    /// True for the session whose access token made this request.
    async fn current(&self) -> bool {
        self.0.current
    }
}

impl From<Seen> for User {
    fn from(seen: Seen) -> Self {
        Self(seen)
    }
}

/// The total of a users page, counted with it.
pub struct UserCount(i64);

impl super::connection::Counted for UserCount {
    async fn count(&self, _ctx: &Context<'_>) -> Result<i64> {
        Ok(self.0)
    }
}

connection!(UserConnection, UserEdge, User, Seen, UserCount);

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let viewer = viewer(ctx)?;
        Ok(User(ctx.data::<Accounts>()?.me(viewer).await?))
    }

    /// The signed-in user's live sessions, newest first.
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<Session>> {
        let viewer = viewer(ctx)?;
        let sessions = ctx.data::<Accounts>()?.sessions(viewer).await?;
        Ok(sessions.into_iter().map(Session).collect())
    }

    /// Admins only. search matches name or email case-insensitively by substring.
    #[graphql(complexity = "types::page_complexity(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
    ) -> Result<UserConnection> {
        let viewer = viewer(ctx)?;
        viewer.require_admin()?;
        let limit = types::limit(first)?;
        let after = after
            .map(|c| Cursor::decode("after", &c, Some(Order::BY_NAME)))
            .transpose()?;
        let search = search.map(|s| SearchTerm::parse("search", &s)).transpose()?.flatten();
        let (page, total) = ctx
            .data::<Accounts>()?
            .users(viewer, limit, after, search.as_ref())
            .await?;
        Ok(UserConnection::new(page, UserCount(total)))
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        let registration = Registration {
            name: input.name,
            email: input.email,
            password: input.password,
        };
        let request_id = ctx.data::<super::RequestId>()?.0.as_deref();
        let client = ctx.data::<Client>()?;
        Ok(ctx
            .data::<Accounts>()?
            .register(registration, client, request_id)
            .await?
            .into())
    }

    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        let request_id = ctx.data::<super::RequestId>()?.0.as_deref();
        let accounts = ctx.data::<Accounts>()?;
        let client = ctx.data::<Client>()?;
        Ok(accounts
            .login(
                &input.email,
                &input.password,
                input.totp_code.as_deref(),
                client,
                request_id,
            )
            .await?
            .into())
    }

    /// Exchanges a refresh token for a new pair. Reusing a retired refresh token revokes every refresh token of that user.
    async fn refresh_token(&self, ctx: &Context<'_>, #[graphql(secret)] refresh_token: String) -> Result<AuthPayload> {
        let client = ctx.data::<Client>()?;
        Ok(ctx.data::<Accounts>()?.refresh(&refresh_token, client).await?.into())
    }

    /// Needs the current password; the new one follows the password rules. Ends
    /// every other session of the user; access tokens issued before the change
    /// are refused within 10 seconds on every replica. Returns a fresh pair for
    /// this client.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] current_password: String,
        #[graphql(secret)] new_password: String,
    ) -> Result<AuthPayload> {
        let viewer = viewer(ctx)?;
        let client = ctx.data::<Client>()?;
        Ok(ctx
            .data::<Accounts>()?
            .change_password(viewer, &current_password, &new_password, client)
            .await?
            .into())
    }

    /// Ends one of the viewer's own sessions: its refresh token stops working. True when it was live.
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let viewer = viewer(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(ctx.data::<Accounts>()?.revoke_session(viewer, id).await?)
    }

    /// Ends every session of the viewer, this one included; access tokens already issued are refused within 10 seconds.
    async fn logout_everywhere(&self, ctx: &Context<'_>) -> Result<bool> {
        let viewer = viewer(ctx)?;
        Ok(ctx.data::<Accounts>()?.logout_everywhere(viewer).await?)
    }

    /// Starts (or restarts) enrolling an authenticator app. MFA is not on until confirmTotp.
    async fn begin_totp_enrollment(&self, ctx: &Context<'_>) -> Result<TotpEnrollment> {
        let viewer = viewer(ctx)?;
        let client = ctx.data::<Client>()?;
        Ok(ctx
            .data::<Accounts>()?
            .begin_totp_enrollment(viewer, client)
            .await?
            .into())
    }

    /// Turns MFA on with a current code from the app. Returns 10 single-use recovery codes, shown only this once.
    async fn confirm_totp(&self, ctx: &Context<'_>, #[graphql(secret)] code: String) -> Result<Vec<String>> {
        let viewer = viewer(ctx)?;
        let client = ctx.data::<Client>()?;
        Ok(ctx.data::<Accounts>()?.confirm_totp(viewer, &code, client).await?)
    }

    /// Turns MFA off; needs the password and a current code or a recovery code.
    async fn disable_totp(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] password: String,
        #[graphql(secret)] code: String,
    ) -> Result<bool> {
        let viewer = viewer(ctx)?;
        let client = ctx.data::<Client>()?;
        Ok(ctx
            .data::<Accounts>()?
            .disable_totp(viewer, &password, &code, client)
            .await?)
    }

    /// Admins only. A disabled user cannot sign in or refresh, and their access tokens are refused within 10 seconds on every replica.
    async fn set_user_disabled(&self, ctx: &Context<'_>, id: ID, disabled: bool) -> Result<User> {
        let viewer = viewer(ctx)?;
        viewer.require_admin()?;
        let id = parse_id("id", &id)?;
        Ok(User(
            ctx.data::<Accounts>()?.set_user_disabled(viewer, id, disabled).await?,
        ))
    }

    /// Revokes the given refresh token. True when it was live.
    async fn logout(&self, ctx: &Context<'_>, #[graphql(secret)] refresh_token: String) -> Result<bool> {
        Ok(ctx.data::<Accounts>()?.logout(&refresh_token).await?)
    }
}
