//! One throwaway PostgreSQL cluster per test run, with a migrated template
//! database; each test gets its own copy (`CREATE DATABASE ... TEMPLATE`),
//! dropped when the test ends.
//!
//! The cluster runs on a thread of its own for the life of the test process.
//! When the process ends, however it ends, the cluster's watchdog stops it
//! and deletes its folder; folders of runs that crashed harder are swept at
//! the next start. `TEST_DATABASE_URL` (a superuser URL) uses an existing
//! server instead, which other test runs may share: the template is named
//! for the newest migration, made once under an advisory lock and never
//! dropped, and each run drops only the databases it made.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    sync::OnceLock,
};

use healthcare_api::db::{
    embedded::{self, EmbeddedPostgres, Options},
    migrate,
};

pub struct Cluster {
    /// Connection string to the server, without a database name.
    base: String,
    /// The migrated template database.
    template: String,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The folder under which test clusters live, one per test process.
pub fn root() -> PathBuf {
    std::env::temp_dir().join("healthcare-api-tests")
}

pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("test-postgres".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("runtime for the test cluster");
                runtime.block_on(async move {
                    let started = start().await;
                    let failed = started.is_err();
                    let (base, pg) = match started {
                        Ok((base, template, pg)) => (Ok((base, template)), pg),
                        Err(e) => (Err(format!("{e:#}")), None),
                    };
                    tx.send(base).expect("test harness waiting");
                    if !failed {
                        // Keep the cluster (and its watchdog pipe) for the whole run.
                        let _keep = pg;
                        std::future::pending::<()>().await;
                    }
                });
            })
            .expect("thread for the test cluster");
        let (base, template) = rx
            .recv()
            .expect("the test cluster thread ended")
            .unwrap_or_else(|e| panic!("could not start the test PostgreSQL cluster: {e}"));
        Cluster { base, template }
    })
}

async fn start() -> anyhow::Result<(String, String, Option<EmbeddedPostgres>)> {
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        let base = strip_dbname(&url);
        let template = prepare_template(&base).await?;
        return Ok((base, template, None));
    }
    sweep_leftovers();
    // Like /tmp: anyone may add a folder, and remove only their own, so the
    // cluster's watchdog can delete this run's folder when it is done.
    std::fs::create_dir_all(root())?;
    std::fs::set_permissions(root(), std::os::unix::fs::PermissionsExt::from_mode(0o1777))?;
    let folder = root().join(std::process::id().to_string());
    std::fs::create_dir_all(&folder)?;
    embedded::give_to_cluster_user(&folder)?;
    let mut opts = Options::throwaway(folder.join("pg"));
    opts.remove_on_exit = Some(folder.clone());
    opts.settings.push(("log_min_messages".into(), "warning".into()));
    // Counts the statements each test database runs (see the N+1 tests).
    opts.settings
        .push(("shared_preload_libraries".into(), "pg_stat_statements".into()));
    opts.settings.push(("pg_stat_statements.track".into(), "all".into()));
    let pg = EmbeddedPostgres::start(opts).await?;
    let base = strip_dbname(&pg.url("postgres"));
    let template = prepare_template(&base).await?;
    Ok((base, template, Some(pg)))
}

/// Deletes the folders of earlier runs whose process is gone.
fn sweep_leftovers() {
    let Ok(entries) = std::fs::read_dir(root()) else { return };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn strip_dbname(url: &str) -> String {
    url.split_whitespace()
        .filter(|part| !part.starts_with("dbname="))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The migrated template, named for the newest migration: made once (under
/// an advisory lock, so that runs sharing a server wait for each other) and
/// then reused. A template is never dropped: another run may be copying it.
async fn prepare_template(base: &str) -> anyhow::Result<String> {
    let newest = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&migrate::MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .iter()
        .map(|m| m.name().version().to_string())
        .max()
        .unwrap_or_default();
    let template = format!(
        "healthcare_template_{}",
        newest.replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    let admin = connect(&format!("{base} dbname=postgres")).await?;
    admin
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await?;
    admin.batch_execute("SELECT pg_advisory_lock(7256117)").await?;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await?
        .is_some();
    if !exists {
        // Built under another name and renamed when complete, so that a run
        // that dies half-way never leaves a template that looks ready.
        let building = format!("{template}_building");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {building}"))
            .await?;
        admin.batch_execute(&format!("CREATE DATABASE {building}")).await?;
        migrate::run(&format!("{base} dbname={building}")).await?;
        admin
            .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .await?;
    }
    admin.batch_execute("SELECT pg_advisory_unlock(7256117)").await?;
    Ok(template)
}

pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let config = tokio_postgres::Config::from_str(url)?;
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

impl Cluster {
    /// A new database, migrated (a copy of the template) or empty, dropped
    /// when the returned guard is.
    pub async fn database(&self, migrated: bool) -> TestDb {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&self.url("postgres")).await.expect("admin connection");
        let sql = if migrated {
            format!("CREATE DATABASE {name} TEMPLATE {}", self.template)
        } else {
            format!("CREATE DATABASE {name}")
        };
        admin.batch_execute(&sql).await.expect("create test database");
        TestDb {
            url: self.url(&name),
            admin: self.url("postgres"),
            name,
        }
    }

    pub fn url(&self, dbname: &str) -> String {
        format!("{} dbname={dbname}", self.base)
    }
}

/// A test's own database, dropped (with whatever is still connected to it)
/// when the test is done with it.
pub struct TestDb {
    pub url: String,
    admin: String,
    name: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on:
        // the statement runs on a thread and runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let client = connect(&admin).await?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// A scratch folder the cluster's user may write to, removed on drop.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(label: &str) -> Self {
        let path = root()
            .join(std::process::id().to_string())
            .join(format!("{label}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("scratch folder");
        embedded::give_to_cluster_user(&path).expect("scratch folder owner");
        embedded::give_to_cluster_user(path.parent().expect("parent")).expect("scratch parent owner");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
