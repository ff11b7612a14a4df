//! A private PostgreSQL cluster run from the machine's server binaries: the
//! default database when `DATABASE_URL` is unset, and the tests' database.
//!
//! The cluster lives in one folder, listens on a Unix socket inside it (or on
//! a loopback port when asked), and runs as the `postgres` user when this
//! process is root (initdb and postgres refuse root). PostgreSQL runs under a
//! small shell watchdog whose stdin is a pipe from this process: when this
//! process exits for any reason, even SIGKILL, the pipe closes and the
//! watchdog shuts the cluster down. A cluster or pid file left behind anyway
//! (a machine crash, a killed watchdog) is recovered on the next start.
//!
//! The process that runs the cluster holds a lock on `<dir>.lock` for as long
//! as it lives (the kernel drops it when the process ends, however it ends).
//! A second process on the same folder (`create-admin` beside a running
//! server) finds the lock held and uses the running cluster without starting
//! or stopping it; only a process that holds the lock may stop a postmaster
//! it finds running, since that one's owner is then known to be gone.

use std::{
    fs::{File, TryLockError},
    io::{Read as _, Seek as _, Write as _},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::process::{Child, ChildStdin, Command};

/// Runs `"$@"` (postgres) and stops it with SIGINT (fast shutdown) when its
/// stdin reaches end of file; exits with postgres's status.
const WATCHDOG: &str = r#"exec 3<&0
"$@" </dev/null 3<&- &
pid=$!
( read -r _ <&3; kill -INT "$pid" 2>/dev/null ) &
reader=$!
exec 3<&-
wait "$pid"
status=$?
kill "$reader" 2>/dev/null
if [ -n "$REMOVE_ON_EXIT" ]; then rm -rf "$REMOVE_ON_EXIT"; fi
exit "$status"
"#;

const SOCKET_PORT: u16 = 5432;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// How to run the cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// The cluster's folder (PGDATA); created on first start.
    pub dir: PathBuf,
    /// Listen on this loopback port too (`None`: the Unix socket only).
    pub tcp_port: Option<u16>,
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
    /// Replaces `pg_hba.conf` when set.
    pub hba: Option<String>,
    /// A folder (owned by the cluster's user) the watchdog deletes once the
    /// cluster has stopped: for throwaway clusters.
    pub remove_on_exit: Option<PathBuf>,
}

impl Options {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            tcp_port: None,
            settings: Vec::new(),
            hba: None,
            remove_on_exit: None,
        }
    }

    /// Settings for a cluster whose data may be lost: no fsync, more connections.
    pub fn throwaway(dir: impl Into<PathBuf>) -> Self {
        let mut opts = Self::new(dir);
        for (k, v) in [
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("max_connections", "400"),
        ] {
            opts.settings.push((k.into(), v.into()));
        }
        opts
    }
}

/// The PostgreSQL server binaries found on this machine.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

impl Binaries {
    /// The newest `/usr/lib/postgresql/*/bin`, else `PATH`.
    pub fn find() -> anyhow::Result<Self> {
        Self::find_in(Path::new("/usr/lib/postgresql"), std::env::var_os("PATH"))
    }

    /// The newest `<versions>/*/bin`, else the first folder of `path` with both.
    pub fn find_in(versions: &Path, path: Option<std::ffi::OsString>) -> anyhow::Result<Self> {
        let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir(versions)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = entry.path().join("bin");
                bin.join("postgres").is_file().then_some((version, bin))
            })
            .collect();
        versioned.sort();
        let bin_dir = versioned.pop().map(|(_, bin)| bin).or_else(|| {
            path.and_then(|path| {
                std::env::split_paths(&path).find(|dir| dir.join("postgres").is_file() && dir.join("initdb").is_file())
            })
        });
        match bin_dir {
            Some(dir) if dir.join("initdb").is_file() => Ok(Self {
                initdb: dir.join("initdb"),
                postgres: dir.join("postgres"),
            }),
            _ => bail!(
                "PostgreSQL server binaries (initdb, postgres) were not found in /usr/lib/postgresql/*/bin \
                 or on PATH: install the Debian package `postgresql`, or set DATABASE_URL"
            ),
        }
    }
}

/// The user the cluster runs as when this process is root.
#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

fn cluster_owner() -> anyhow::Result<Option<Owner>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = c"postgres";
    // SAFETY: getpwnam takes a NUL-terminated name and returns a pointer to a
    // static record (or null); we copy the two fields out at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        bail!(
            "running as root, the embedded PostgreSQL needs the `postgres` user (from the Debian \
             package `postgresql`) to run as, since initdb and postgres refuse root"
        );
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some(Owner { uid, gid }))
}

/// Hands a folder to the user the cluster runs as (when this process is root).
pub fn give_to_cluster_user(path: &Path) -> anyhow::Result<()> {
    chown(path, cluster_owner()?)
}

fn chown(path: &Path, owner: Option<Owner>) -> anyhow::Result<()> {
    if let Some(o) = owner {
        std::os::unix::fs::chown(path, Some(o.uid), Some(o.gid))
            .with_context(|| format!("could not hand {} to the postgres user", path.display()))?;
    }
    Ok(())
}

fn command(program: &Path, owner: Option<Owner>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir("/").env_remove("PGDATA").kill_on_drop(false);
    if let Some(o) = owner {
        cmd.uid(o.uid).gid(o.gid).env("HOME", "/tmp").env("USER", "postgres");
    }
    cmd
}

/// A running private cluster.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    opts: Options,
    bins: Binaries,
    owner: Option<Owner>,
    watchdog: Option<(Child, ChildStdin)>,
    /// Held while this process runs the cluster; `None` when another live
    /// process runs it and this one only uses it.
    claim: Option<File>,
    /// The process that runs the cluster, when it is another one.
    run_by: Option<u32>,
}

/// Whose the cluster in `dir` is: ours (the lock, now held, with our pid in
/// it), or a live process's, whose pid the lock file names.
fn claim(dir: &Path) -> anyhow::Result<Result<File, Option<u32>>> {
    let path = dir.with_extension("lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("could not open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            file.rewind()?;
            write!(file, "{}", std::process::id())?;
            Ok(Ok(file))
        }
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Ok(Err(pid.trim().parse().ok()))
        }
        Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("could not lock {}", path.display())),
    }
}

impl EmbeddedPostgres {
    /// Creates the cluster on first use, recovers one left behind, starts it
    /// and waits until it accepts connections.
    pub async fn start(mut opts: Options) -> anyhow::Result<Self> {
        let bins = Binaries::find()?;
        let owner = cluster_owner()?;
        if opts.dir.is_relative() {
            opts.dir = std::env::current_dir()?.join(&opts.dir);
        }
        let parent = opts.dir.parent().context("the data folder has no parent")?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("could not create the data folder {}", parent.display()))?;
        let (claim, run_by) = match claim(&opts.dir)? {
            Ok(lock) => (Some(lock), None),
            Err(pid) => (None, pid),
        };
        let mut pg = Self {
            opts,
            bins,
            owner,
            watchdog: None,
            claim,
            run_by,
        };
        if pg.claim.is_none() {
            tracing::info!(
                pid = pg.run_by,
                "using the PostgreSQL cluster that another process runs"
            );
            pg.wait_ready().await?;
            return Ok(pg);
        }
        pg.init_if_new().await?;
        pg.launch().await?;
        Ok(pg)
    }

    /// Whether another live process runs the cluster: this one then neither
    /// started it nor will stop it.
    pub fn run_elsewhere(&self) -> bool {
        self.claim.is_none()
    }

    /// The process that runs the cluster, when it is another one.
    pub fn run_by(&self) -> Option<u32> {
        self.run_by
    }

    pub fn dir(&self) -> &Path {
        &self.opts.dir
    }

    /// The log file the cluster writes to.
    pub fn log_file(&self) -> PathBuf {
        self.opts.dir.with_extension("log")
    }

    fn port(&self) -> u16 {
        self.opts.tcp_port.unwrap_or(SOCKET_PORT)
    }

    /// A libpq-style connection string for `dbname` as the superuser (over
    /// the Unix socket, or loopback TCP when the cluster has a port).
    pub fn url(&self, dbname: &str) -> String {
        match self.opts.tcp_port {
            Some(port) => format!("host=127.0.0.1 port={port} user=postgres dbname={dbname}"),
            None => format!(
                "host='{}' port={SOCKET_PORT} user=postgres dbname={dbname}",
                self.opts
                    .dir
                    .display()
                    .to_string()
                    .replace('\\', "\\\\")
                    .replace('\'', "\\'")
            ),
        }
    }

    /// Creates `dbname` unless it exists.
    pub async fn ensure_database(&self, dbname: &str) -> anyhow::Result<()> {
        let client = self.admin_client().await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
            .await?
            .is_some();
        if !exists {
            let sql = format!("CREATE DATABASE \"{}\"", dbname.replace('"', "\"\""));
            match client.batch_execute(&sql).await {
                Ok(()) => {}
                // Another replica made it first.
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
                Err(e) => return Err(e).context("could not create the database"),
            }
        }
        Ok(())
    }

    /// A plain client on the `postgres` database over the Unix socket (which
    /// is always there), for set-up work.
    pub async fn admin_client(&self) -> anyhow::Result<tokio_postgres::Client> {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.opts.dir)
            .port(self.port())
            .user("postgres")
            .dbname("postgres");
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// Stops the cluster (fast shutdown) and waits for it.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some((mut child, stdin)) = self.watchdog.take() else {
            return Ok(());
        };
        drop(stdin);
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(_) => Ok(()),
            Err(_) => {
                let _ = child.start_kill();
                stop_left_behind(&self.opts.dir).await;
                bail!("the embedded PostgreSQL did not stop in {STOP_TIMEOUT:?}")
            }
        }
    }

    /// Starts a stopped cluster again (one that this process runs).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.claim.is_some(), "the cluster is run by another process");
        self.stop().await?;
        self.launch().await
    }

    async fn init_if_new(&self) -> anyhow::Result<()> {
        let dir = &self.opts.dir;
        if dir.join("PG_VERSION").is_file() {
            return Ok(());
        }
        // initdb into a scratch folder and rename it into place, so that an
        // interrupted first run never leaves a half-made cluster.
        let scratch = dir.with_extension("initdb");
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch)?;
        }
        std::fs::create_dir(&scratch)?;
        chown(&scratch, self.owner)?;
        let output = command(&self.bins.initdb, self.owner)
            .arg("-D")
            .arg(&scratch)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-instructions",
            ])
            .stdin(Stdio::null())
            .output()
            .await
            .context("could not run initdb")?;
        if !output.status.success() {
            let _ = std::fs::remove_dir_all(&scratch);
            bail!(
                "initdb failed for {}: {}",
                dir.display(),
                last_line(&String::from_utf8_lossy(&output.stderr))
            );
        }
        if let Some(hba) = &self.opts.hba {
            let path = scratch.join("pg_hba.conf");
            std::fs::write(&path, hba)?;
            chown(&path, self.owner)?;
        }
        std::fs::rename(&scratch, dir)?;
        Ok(())
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let dir = self.opts.dir.clone();
        stop_left_behind(&dir).await;

        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())
            .context("could not open the PostgreSQL log file")?;
        let mut cmd = command(Path::new("/bin/sh"), self.owner);
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("postgres-watchdog")
            .arg(&self.bins.postgres)
            .arg("-D")
            .arg(&dir)
            .arg("-k")
            .arg(&dir);
        let (listen, port) = match self.opts.tcp_port {
            Some(port) => ("127.0.0.1", port),
            None => ("", SOCKET_PORT),
        };
        cmd.arg("-p").arg(port.to_string());
        cmd.arg("-c").arg(format!("listen_addresses={listen}"));
        for (name, value) in &self.opts.settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        if let Some(folder) = &self.opts.remove_on_exit {
            cmd.env("REMOVE_ON_EXIT", folder);
        }
        cmd.stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let mut child = cmd.spawn().context("could not start postgres")?;
        let stdin = child.stdin.take().context("no pipe to the postgres watchdog")?;
        self.watchdog = Some((child, stdin));
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.admin_client().await.is_ok() {
                return Ok(());
            }
            if let Some((child, _)) = self.watchdog.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.watchdog = None;
                bail!(
                    "PostgreSQL exited during start-up ({status}); see {}: {}",
                    self.log_file().display(),
                    last_line(&std::fs::read_to_string(self.log_file()).unwrap_or_default())
                );
            }
            if Instant::now() > deadline {
                bail!("PostgreSQL did not accept connections within {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Stops a postmaster that an earlier run left running on `dir`, and clears
/// a pid file whose process is gone or is not PostgreSQL any more. Called
/// only while holding the cluster's lock, so its owner is known to be gone.
async fn stop_left_behind(dir: &Path) {
    let pid_file = dir.join("postmaster.pid");
    let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
        .filter(|pid| *pid > 0)
    else {
        return;
    };
    let is_postgres = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmd| String::from_utf8_lossy(&cmd).contains("postgres"))
        .unwrap_or(false);
    if !is_postgres {
        tracing::warn!(pid, "removing a stale PostgreSQL pid file");
        let _ = std::fs::remove_file(&pid_file);
        return;
    }
    tracing::warn!(pid, "stopping a PostgreSQL cluster left running by an earlier run");
    for (signal, wait) in [
        (libc::SIGINT, Duration::from_secs(20)),
        (libc::SIGQUIT, Duration::from_secs(5)),
        (libc::SIGKILL, Duration::from_secs(5)),
    ] {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, signal) };
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if !running(pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Whether a process runs (exists and is not a zombie waiting to be reaped:
/// an orphaned postmaster's new parent may never reap it).
pub fn running(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the command name, which is in parentheses.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_owned))
        });
    !matches!(state.as_deref(), Some("Z" | "X"))
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_server_binaries_name_the_package() {
        let empty = std::env::temp_dir().join(format!("no-postgres-{}", std::process::id()));
        let err = Binaries::find_in(&empty, Some(empty.clone().into_os_string())).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("Debian package `postgresql`"), "{message}");
        assert!(!message.contains('\n'));
    }

    #[test]
    fn the_newest_version_wins() {
        let root = std::env::temp_dir().join(format!("pg-versions-{}", std::process::id()));
        for version in ["13", "15", "9"] {
            let bin = root.join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("postgres"), "").unwrap();
            std::fs::write(bin.join("initdb"), "").unwrap();
        }
        let found = Binaries::find_in(&root, None).unwrap();
        assert_eq!(found.postgres, root.join("15/bin/postgres"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
