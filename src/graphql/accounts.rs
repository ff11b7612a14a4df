//! The accounts part of the schema: `me`, and the public account mutations.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};

use super::{types::User, viewer};
use crate::{
    accounts::{Accounts, AuthSession, Registration, Seen},
    http::client::Client,
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

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let viewer = viewer(ctx)?;
        Ok(User(ctx.data::<Accounts>()?.me(viewer).await?))
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
            .login(&input.email, &input.password, client, request_id)
            .await?
            .into())
    }

    /// Exchanges a refresh token for a new pair. Reusing a retired refresh token revokes every refresh token of that user.
    async fn refresh_token(&self, ctx: &Context<'_>, #[graphql(secret)] refresh_token: String) -> Result<AuthPayload> {
        let client = ctx.data::<Client>()?;
        Ok(ctx.data::<Accounts>()?.refresh(&refresh_token, client).await?.into())
    }

    /// Revokes the given refresh token. True when it was live.
    async fn logout(&self, ctx: &Context<'_>, #[graphql(secret)] refresh_token: String) -> Result<bool> {
        Ok(ctx.data::<Accounts>()?.logout(&refresh_token).await?)
    }
}
