//! Applies the migrations embedded in the binary, under a PostgreSQL advisory
//! lock so that replicas starting together on one database take turns.

use anyhow::Context as _;
use diesel::{RunQueryDsl, sql_types::BigInt};
use diesel_async::{AsyncPgConnection, async_connection_wrapper::AsyncConnectionWrapper};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The advisory lock key: "healthcare-api migrations", fixed for all versions.
const LOCK_KEY: i64 = 0x6865_616c_7468_6d67;

/// Applies every pending migration; returns the versions it applied.
pub async fn run(url: &str) -> anyhow::Result<Vec<String>> {
    let conn = super::establish(url)
        .await
        .context("could not connect to the database to migrate it")?;
    tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(LOCK_KEY)
            .execute(&mut conn)
            .context("could not take the migration lock")?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
        // Closing the session would release the lock too; this is just prompt.
        let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(LOCK_KEY)
            .execute(&mut conn);
        applied
    })
    .await
    .context("the migration task failed")?
}

/// Reverts every applied migration (for the reversibility check in tests).
pub async fn revert_all(url: &str) -> anyhow::Result<usize> {
    let conn = super::establish(url).await?;
    tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        conn.revert_all_migrations(MIGRATIONS)
            .map(|v| v.len())
            .map_err(|e| anyhow::anyhow!("revert failed: {e}"))
    })
    .await?
}

/// Reverts the newest applied migration (for tests of a migration's data
/// changes); returns its version.
pub async fn revert_newest(url: &str) -> anyhow::Result<String> {
    let conn = super::establish(url).await?;
    tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        conn.revert_last_migration(MIGRATIONS)
            .map(|version| version.to_string())
            .map_err(|e| anyhow::anyhow!("revert failed: {e}"))
    })
    .await?
}
