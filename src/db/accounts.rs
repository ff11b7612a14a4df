//! Rows and named queries of the accounts tables: users, refresh tokens and
//! failed logins.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    one,
    schema::{login_failures, refresh_tokens, users},
};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUserRow<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub email_key: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
}

pub async fn insert_user(conn: &mut AsyncPgConnection, new: &NewUserRow<'_>) -> QueryResult<UserRow> {
    let query = diesel::insert_into(users::table)
        .values(new)
        .returning(UserRow::as_returning());
    query.load(conn).await.and_then(one)
}

pub async fn find_user(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The user with this lower-cased email, with their password hash.
pub async fn find_login(conn: &mut AsyncPgConnection, email_key: &str) -> QueryResult<Option<(UserRow, String)>> {
    users::table
        .filter(users::email_key.eq(email_key))
        .select((UserRow::as_select(), users::password_hash))
        .first(conn)
        .await
        .optional()
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg))]
pub struct RefreshTokenRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn insert_refresh_token(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    family_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::family_id.eq(family_id),
            refresh_tokens::token_hash.eq(token_hash),
            refresh_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// The token with this hash, locked for the rest of the transaction so that
/// two concurrent refreshes with one token cannot both succeed.
pub async fn lock_refresh_token(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> QueryResult<Option<RefreshTokenRow>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(RefreshTokenRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn retire_refresh_token(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::update(refresh_tokens::table.find(id))
        .set(refresh_tokens::used_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
        .map(drop)
}

/// Revokes every live refresh token of the user; returns how many.
pub async fn revoke_all_refresh_tokens(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await
}

/// Revokes one token if it is live (not used, revoked or expired).
pub async fn revoke_live_refresh_token(conn: &mut AsyncPgConnection, token_hash: &[u8]) -> QueryResult<bool> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .filter(refresh_tokens::revoked_at.is_null())
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::expires_at.gt(diesel::dsl::now)),
    )
    .set(refresh_tokens::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await
    .map(|n| n > 0)
}

/// Failed logins for this email since `since`.
pub async fn count_login_failures(
    conn: &mut AsyncPgConnection,
    email_key: &str,
    since: DateTime<Utc>,
) -> QueryResult<i64> {
    login_failures::table
        .filter(login_failures::email_key.eq(email_key))
        .filter(login_failures::at.gt(since))
        .count()
        .get_result(conn)
        .await
}

/// Records a failed login, and forgets this email's failures that are too
/// old to count any more.
pub async fn record_login_failure(
    conn: &mut AsyncPgConnection,
    email_key: &str,
    forget_before: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::delete(
        login_failures::table
            .filter(login_failures::email_key.eq(email_key))
            .filter(login_failures::at.le(forget_before)),
    )
    .execute(conn)
    .await?;
    diesel::insert_into(login_failures::table)
        .values(login_failures::email_key.eq(email_key))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn find_users(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::id.eq_any(ids))
        .select(UserRow::as_select())
        .load(conn)
        .await
}
