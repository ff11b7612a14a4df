//! Rows and named queries of the accounts tables: users, sessions and their
//! refresh tokens, failed logins, and the second factor.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    one,
    schema::{login_failures, recovery_codes, refresh_tokens, sessions, totp_secrets, users},
};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    /// Access tokens issued under an older version are refused.
    pub token_version: i32,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Set while the user has MFA on.
    pub mfa_enabled_at: Option<DateTime<Utc>>,
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

/// The user, locked for the rest of the transaction: account changes of
/// one user (turning MFA on and off) happen one at a time.
pub async fn lock_user(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .for_update()
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

/// Revokes one token if it is live (not used, revoked or expired): its
/// user and session.
pub async fn revoke_live_refresh_token(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> QueryResult<Option<(Uuid, Uuid)>> {
    let query = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .filter(refresh_tokens::revoked_at.is_null())
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::expires_at.gt(diesel::dsl::now)),
    )
    .set(refresh_tokens::revoked_at.eq(diesel::dsl::now))
    .returning((refresh_tokens::user_id, refresh_tokens::family_id));
    Ok(query.load(conn).await?.into_iter().next())
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

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct SessionRow {
    pub id: Uuid,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

/// Starts a session; returns its id (its refresh tokens' family).
pub async fn insert_session(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    user_agent: Option<&str>,
    expires_at: DateTime<Utc>,
) -> QueryResult<Uuid> {
    let query = diesel::insert_into(sessions::table)
        .values((
            sessions::user_id.eq(user_id),
            sessions::user_agent.eq(user_agent),
            sessions::expires_at.eq(expires_at),
        ))
        .returning(sessions::id);
    query.load(conn).await.and_then(one)
}

/// Marks a live session as used by a refresh, until its new token's
/// expiry; false when the session has ended.
pub async fn touch_session(conn: &mut AsyncPgConnection, id: Uuid, expires_at: DateTime<Utc>) -> QueryResult<bool> {
    diesel::update(sessions::table.find(id).filter(sessions::ended_at.is_null()))
        .set((
            sessions::last_used_at.eq(diesel::dsl::now),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// The user's live sessions, newest first.
pub async fn live_sessions(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::ended_at.is_null())
        .filter(sessions::expires_at.gt(diesel::dsl::now))
        .order_by((sessions::created_at.desc(), sessions::id.desc()))
        .select(SessionRow::as_select())
        .load(conn)
        .await
}

/// Ends one of the user's sessions and revokes its refresh tokens; true
/// when it was live.
pub async fn end_session(conn: &mut AsyncPgConnection, user_id: Uuid, id: Uuid) -> QueryResult<bool> {
    let ended = diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::ended_at.is_null()),
    )
    .set(sessions::ended_at.eq(diesel::dsl::now))
    .returning(sessions::expires_at)
    .load::<DateTime<Utc>>(conn)
    .await?;
    let Some(expires_at) = ended.into_iter().next() else {
        // Another user's, unknown, or ended before: nothing to revoke.
        return Ok(false);
    };
    revoke_session_tokens(conn, id).await?;
    Ok(expires_at > Utc::now())
}

/// Ends every session of the user but `keep` (if any) and revokes their
/// refresh tokens; returns how many sessions ended.
pub async fn end_sessions(conn: &mut AsyncPgConnection, user_id: Uuid, keep: Option<Uuid>) -> QueryResult<usize> {
    let keep = keep.unwrap_or(Uuid::nil());
    let ended = diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::ended_at.is_null())
            .filter(sessions::id.ne(keep)),
    )
    .set(sessions::ended_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null())
            .filter(refresh_tokens::family_id.ne(keep)),
    )
    .set(refresh_tokens::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    Ok(ended)
}

/// Revokes the live refresh tokens of one session.
pub async fn revoke_session_tokens(conn: &mut AsyncPgConnection, session: Uuid) -> QueryResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(session))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await
    .map(drop)
}

/// Raises the user's token version, so that every access token issued
/// before is refused; returns the new version.
pub async fn raise_token_version(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<i32> {
    let query = diesel::update(users::table.find(user_id))
        .set((
            users::token_version.eq(users::token_version + 1),
            users::tokens_revoked_at.eq(diesel::dsl::now),
        ))
        .returning(users::token_version);
    query.load(conn).await.and_then(one)
}

/// Disables or enables an account; the change is published to every
/// replica through `tokens_revoked_at`, and disabling raises the token
/// version. The user as they are now, if they exist.
pub async fn set_disabled(conn: &mut AsyncPgConnection, user_id: Uuid, disabled: bool) -> QueryResult<Option<UserRow>> {
    let bump = i32::from(disabled);
    let query = diesel::update(users::table.find(user_id))
        .set((
            users::disabled_at.eq(disabled.then(Utc::now)),
            users::token_version.eq(users::token_version + bump),
            users::tokens_revoked_at.eq(diesel::dsl::now),
        ))
        .returning(UserRow::as_returning());
    Ok(query.load(conn).await?.into_iter().next())
}

/// The users whose tokens were revoked (or who were disabled or enabled)
/// after `since`: id, token version, disabled, when.
pub async fn revoked_since(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> QueryResult<Vec<(Uuid, i32, bool, DateTime<Utc>)>> {
    users::table
        .filter(users::tokens_revoked_at.gt(since))
        .select((
            users::id,
            users::token_version,
            users::disabled_at.is_not_null(),
            users::tokens_revoked_at.assume_not_null(),
        ))
        .load(conn)
        .await
}

/// The user's email key (what failed logins are counted under) and
/// password hash.
pub async fn email_key_and_password_hash(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> QueryResult<Option<(String, String)>> {
    users::table
        .find(user_id)
        .select((users::email_key, users::password_hash))
        .first(conn)
        .await
        .optional()
}

pub async fn set_password_hash(conn: &mut AsyncPgConnection, user_id: Uuid, hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::password_hash.eq(hash))
        .execute(conn)
        .await
        .map(drop)
}

/// A page of users, by name; `pattern` matches name or email.
pub async fn list_users(
    conn: &mut AsyncPgConnection,
    pattern: Option<&str>,
    after: Option<&crate::paging::Cursor>,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    let mut query = listed_users(pattern);
    if let Some(cond) =
        after.and_then(|c| super::keyset_after(super::KeysetTable::Users, c, crate::paging::Direction::Asc))
    {
        query = query.filter(cond);
    }
    query
        .order_by((users::name.asc(), users::id.asc()))
        .select(UserRow::as_select())
        .limit(limit)
        .load(conn)
        .await
}

pub async fn count_users(conn: &mut AsyncPgConnection, pattern: Option<&str>) -> QueryResult<i64> {
    listed_users(pattern).count().get_result(conn).await
}

fn listed_users<'a>(pattern: Option<&str>) -> users::BoxedQuery<'a, diesel::pg::Pg> {
    let mut query = users::table.into_boxed();
    if let Some(pattern) = pattern {
        query = query.filter(
            users::name
                .ilike(pattern.to_owned())
                .or(users::email.ilike(pattern.to_owned())),
        );
    }
    query
}

/// Keeps a user's new authenticator secret, being enrolled: it replaces
/// one being enrolled before.
pub async fn put_totp_secret(conn: &mut AsyncPgConnection, user_id: Uuid, sealed: &[u8]) -> QueryResult<()> {
    diesel::insert_into(totp_secrets::table)
        .values((
            totp_secrets::user_id.eq(user_id),
            totp_secrets::sealed_secret.eq(sealed),
        ))
        .on_conflict(totp_secrets::user_id)
        .do_update()
        .set((
            totp_secrets::sealed_secret.eq(sealed),
            totp_secrets::created_at.eq(diesel::dsl::now),
            totp_secrets::last_used_step.eq(None::<i64>),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// The user's sealed authenticator secret, if there is one.
pub async fn totp_secret(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<Option<Vec<u8>>> {
    totp_secrets::table
        .find(user_id)
        .select(totp_secrets::sealed_secret)
        .first(conn)
        .await
        .optional()
}

/// Accepts a code's step once: true when no code of this step or a later
/// one was accepted before. Concurrent uses of one code wait for each other
/// on the row, and only the first succeeds.
pub async fn use_totp_step(conn: &mut AsyncPgConnection, user_id: Uuid, step: i64) -> QueryResult<bool> {
    diesel::update(
        totp_secrets::table.find(user_id).filter(
            totp_secrets::last_used_step
                .is_null()
                .or(totp_secrets::last_used_step.lt(step)),
        ),
    )
    .set(totp_secrets::last_used_step.eq(step))
    .execute(conn)
    .await
    .map(|n| n > 0)
}

/// Turns MFA on with these recovery codes (replacing any older ones), or
/// off, dropping the secret and the codes.
pub async fn set_mfa(conn: &mut AsyncPgConnection, user_id: Uuid, recovery: Option<&[Vec<u8>]>) -> QueryResult<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    match recovery {
        Some(hashes) => {
            let rows: Vec<_> = hashes
                .iter()
                .map(|h| (recovery_codes::user_id.eq(user_id), recovery_codes::code_hash.eq(h)))
                .collect();
            diesel::insert_into(recovery_codes::table)
                .values(rows)
                .execute(conn)
                .await?;
        }
        None => {
            diesel::delete(totp_secrets::table.find(user_id)).execute(conn).await?;
        }
    }
    diesel::update(users::table.find(user_id))
        .set(users::mfa_enabled_at.eq(recovery.is_some().then(Utc::now)))
        .execute(conn)
        .await
        .map(drop)
}

/// Uses up one of the user's recovery codes: true when it was unused.
pub async fn use_recovery_code(conn: &mut AsyncPgConnection, user_id: Uuid, hash: &[u8]) -> QueryResult<bool> {
    diesel::update(
        recovery_codes::table
            .find((user_id, hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(diesel::dsl::now))
    .execute(conn)
    .await
    .map(|n| n > 0)
}
