//! The real binary: the embedded default database from an empty folder,
//! restarts, recovery after SIGKILL, configuration errors, subcommands.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::common::{AUDIT_SEAL_KEY, JWT_SECRET, MFA_ENCRYPTION_KEY, PASSWORD, cluster::ScratchDir, listening_port};

const BIN: &str = env!("CARGO_BIN_EXE_healthcare-api");

pub(crate) struct Server {
    pub(crate) child: Child,
    /// Known once it listens (see `wait_ready`).
    port: u16,
}

/// The server binary with a clean environment, on a port of the system's
/// choosing: one picked here and bound later could be taken meanwhile by
/// another test's server, which would then answer in its place.
pub(crate) fn server_command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PORT", "0")
        .env("BCRYPT_COST", "4")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// The server on the embedded database kept in `data_dir`.
fn serve(data_dir: &Path) -> Server {
    let mut cmd = server_command();
    cmd.env("DATA_DIR", data_dir);
    Server::start(cmd)
}

/// A test that fails half-way still stops its server.
impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    pub(crate) fn start(mut cmd: Command) -> Self {
        Self {
            child: cmd.spawn().expect("start the server"),
            port: 0,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) async fn wait_ready(&mut self) -> Duration {
        let started = Instant::now();
        let client = reqwest::Client::new();
        while started.elapsed() < Duration::from_secs(90) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited: {status}");
            }
            if self.port == 0 {
                self.port = listening_port(self.child.id()).unwrap_or(0);
            }
            if self.port != 0
                && let Ok(resp) = client.get(self.url("/readyz")).send().await
                && resp.status() == 200
            {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server was not ready in time");
    }

    pub(crate) async fn gql(&self, query: &str, variables: Value) -> Value {
        reqwest::Client::new()
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub(crate) fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    pub(crate) fn wait_exit(&mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "the server did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn postmaster_pid(data_dir: &Path) -> Option<i32> {
    std::fs::read_to_string(data_dir.join("postgres/postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The pids whose parent is `parent`.
fn children_of(parent: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                })
                == Some(parent)
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    healthcare_api::db::embedded::running(pid)
}

async fn wait_gone(pid: i32) {
    let started = Instant::now();
    while alive(pid) {
        assert!(started.elapsed() < Duration::from_secs(30), "postgres {pid} still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_database_from_empty_folder_restart_and_sigkill() {
    let scratch = ScratchDir::new("embedded");
    let data = scratch.path().join("data");
    let register = json!({ "input": { "name": "Ann", "email": "ann@example.org", "password": PASSWORD } });
    let login = json!({ "input": { "email": "ann@example.org", "password": PASSWORD } });

    // First run: creates the cluster, a JWT secret and an audit seal key
    // (owner-only files), then serves.
    let mut server = serve(&data);
    let first = server.wait_ready().await;
    let body = server.gql(crate::common::REGISTER, register.clone()).await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(data.join("jwt_secret").is_file());
    let secret = std::fs::read_to_string(data.join("jwt_secret")).unwrap();
    assert!(secret.len() >= 32);
    let seal_key = std::fs::read_to_string(data.join("audit_seal_key")).unwrap();
    assert!(seal_key.len() >= 32 && seal_key != secret);
    for file in ["jwt_secret", "audit_seal_key"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(data.join(file)).unwrap().permissions());
        assert_eq!(mode & 0o077, 0, "{file} is readable by others");
    }
    let pid = postmaster_pid(&data).expect("the cluster runs");

    // SIGTERM: a clean stop that takes the cluster with it.
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    wait_gone(pid).await;
    assert!(postmaster_pid(&data).is_none(), "the cluster was stopped cleanly");

    // Restart: same data, same secret.
    let mut server = serve(&data);
    let restart = server.wait_ready().await;
    let body = server.gql(crate::common::LOGIN, login.clone()).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(std::fs::read_to_string(data.join("jwt_secret")).unwrap(), secret);
    assert_eq!(std::fs::read_to_string(data.join("audit_seal_key")).unwrap(), seal_key);
    eprintln!("ready after {first:?} on a first run, {restart:?} on a restart");

    // SIGKILL: the next start recovers on its own, at once.
    server.signal(libc::SIGKILL);
    server.wait_exit();
    let mut server = serve(&data);
    server.wait_ready().await;
    let body = server.gql(crate::common::LOGIN, login.clone()).await;
    assert!(body["errors"].is_null(), "{body}");

    // SIGKILL of the server and of the cluster's watchdog: the cluster is left
    // running on its own, and the next start stops and restarts it.
    let orphan = postmaster_pid(&data).expect("the cluster runs");
    let watchdog = std::fs::read_to_string(format!("/proc/{orphan}/stat"))
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse::<i32>()
        .unwrap();
    // The watchdog's reader (a subshell) would stop the cluster too: kill it first.
    let mut doomed = children_of(watchdog);
    doomed.retain(|pid| *pid != orphan);
    doomed.push(watchdog);
    for pid in doomed {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    server.signal(libc::SIGKILL);
    server.wait_exit();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(orphan), "the orphaned cluster still runs");
    let mut server = serve(&data);
    server.wait_ready().await;
    assert!(!alive(orphan), "the orphaned cluster was stopped");
    let restarted = postmaster_pid(&data).expect("a new cluster runs");
    assert_ne!(restarted, orphan);
    assert!(alive(restarted));
    let body = server.gql(crate::common::LOGIN, login.clone()).await;
    assert!(body["errors"].is_null(), "{body}");
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());

    // A pid file left by a crash, naming a process that is not PostgreSQL.
    std::fs::write(
        data.join("postgres/postmaster.pid"),
        format!("{}\n{}\n", std::process::id(), data.join("postgres").display()),
    )
    .unwrap();
    let mut server = serve(&data);
    server.wait_ready().await;
    let body = server.gql(crate::common::LOGIN, login).await;
    assert!(body["errors"].is_null(), "{body}");
    server.signal(libc::SIGINT);
    assert!(server.wait_exit().success());
}

/// Issue 11: `create-admin` run beside a live server on the embedded
/// database used to stop that server's cluster as "left running by an
/// earlier run". It now uses the running cluster and leaves it running; a
/// second server on the same folder is refused with one clear line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_beside_a_live_server_use_its_cluster_and_never_stop_it() {
    let scratch = ScratchDir::new("beside");
    let data = scratch.path().join("data");
    let mut server = serve(&data);
    server.wait_ready().await;
    let pid = postmaster_pid(&data).expect("the cluster runs");
    let data_dir = data.to_str().unwrap();

    let out = run_with(
        &[
            ("DATA_DIR", data_dir),
            ("BCRYPT_COST", "4"),
            ("ADMIN_PASSWORD", "admin password 1"),
        ],
        &["create-admin", "--email", "root@example.org", "--name", "Root"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("left running"), "{stderr}");
    let out = run_with(&[("DATA_DIR", data_dir)], &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The server's cluster is the same process, still running, and serving.
    assert!(alive(pid));
    assert_eq!(postmaster_pid(&data), Some(pid));
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let login = json!({ "input": { "email": "root@example.org", "password": "admin password 1" } });
    let body = server.gql(crate::common::LOGIN, login).await;
    assert_eq!(body["data"]["login"]["user"]["role"], "ADMIN", "{body}");

    // A second server on the same folder: refused, and the first serves on.
    let out = run_with(&[("DATA_DIR", data_dir), ("PORT", "0")], &["serve"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("another server"), "{stderr}");
    assert!(stderr.contains(&format!("(pid {})", server.child.id())), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(postmaster_pid(&data), Some(pid));
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    // Once the server has stopped, a command runs the cluster itself.
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    wait_gone(pid).await;
    let out = run_with(&[("DATA_DIR", data_dir)], &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        postmaster_pid(&data).is_none(),
        "the command stopped the cluster it ran"
    );
}

fn run_with(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the binary")
}

#[test]
fn bad_settings_stop_start_up_with_one_line() {
    let cases = [
        (vec![("JWT_SECRET", "short")], "JWT_SECRET must be at least 32 bytes"),
        (vec![("DATABASE_URL", "postgres://x/y")], "JWT_SECRET"),
        (
            vec![("DATABASE_URL", "postgres://x/y"), ("JWT_SECRET", JWT_SECRET)],
            "AUDIT_SEAL_KEY",
        ),
        (
            vec![("AUDIT_SEAL_KEY", "short")],
            "AUDIT_SEAL_KEY must be at least 32 bytes",
        ),
        (
            vec![
                ("DATABASE_URL", "postgres://x/y"),
                ("JWT_SECRET", JWT_SECRET),
                ("AUDIT_SEAL_KEY", AUDIT_SEAL_KEY),
            ],
            "MFA_ENCRYPTION_KEY",
        ),
        (
            vec![("MFA_ENCRYPTION_KEY", JWT_SECRET), ("JWT_SECRET", JWT_SECRET)],
            "MFA_ENCRYPTION_KEY must differ from JWT_SECRET",
        ),
        (vec![("MFA_ISSUER", "North: clinic")], "MFA_ISSUER"),
        (vec![("AUDIT_SEAL_INTERVAL", "0")], "AUDIT_SEAL_INTERVAL"),
        (vec![("PORT", "http")], "PORT"),
        (vec![("BCRYPT_COST", "99")], "BCRYPT_COST"),
        (vec![("LOG_FORMAT", "yaml")], "LOG_FORMAT"),
        (
            vec![("DATABASE_URL", "nonsense://"), ("JWT_SECRET", JWT_SECRET)],
            "DATABASE_URL",
        ),
    ];
    for (env, expected) in cases {
        let out = run_with(&env, &["serve"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?}");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn print_schema_writes_the_sdl() {
    let out = run_with(&[], &["print-schema"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), healthcare_api::graphql::sdl());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_create_admin_subcommands() {
    let db = crate::common::cluster::cluster().database(false).await;
    let url = db.url.clone();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("JWT_SECRET", JWT_SECRET),
        ("AUDIT_SEAL_KEY", AUDIT_SEAL_KEY),
        ("MFA_ENCRYPTION_KEY", MFA_ENCRYPTION_KEY),
        ("BCRYPT_COST", "4"),
    ];
    let out = run_with(&env, &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut with_password = env.to_vec();
    with_password.push(("ADMIN_PASSWORD", "admin password 1"));
    let out = run_with(
        &with_password,
        &["create-admin", "--email", "Root@Example.org", "--name", "Root"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The password can come from standard input too.
    let mut child = Command::new(BIN)
        .env_clear()
        .envs(env.iter().copied())
        .args(["create-admin", "--email", "second@example.org", "--name", "Second"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"admin password 2\n").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    // A duplicate, a short password: refused with one line.
    let out = run_with(
        &with_password,
        &["create-admin", "--email", "root@example.org", "--name", "Again"],
    );
    assert!(!out.status.success());
    let mut short = env.to_vec();
    short.push(("ADMIN_PASSWORD", "short"));
    let out = run_with(&short, &["create-admin", "--email", "x@example.org", "--name", "X"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));

    let app = crate::common::TestApp::spawn_on(&url, |_| {}).await;
    let resp = app.login("root@example.org", "admin password 1").await;
    assert_eq!(resp.assert_ok()["login"]["user"]["role"], "ADMIN");
    let resp = app.login("second@example.org", "admin password 2").await;
    assert_eq!(resp.assert_ok()["login"]["user"]["role"], "ADMIN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_passwords_tokens_or_personal_data() {
    let db = crate::common::cluster::cluster().database(true).await;
    let url = db.url.clone();
    let scratch = ScratchDir::new("logs");
    let log_path = scratch.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut cmd = server_command();
    cmd.env("DATABASE_URL", &url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("AUDIT_SEAL_KEY", AUDIT_SEAL_KEY)
        .env("MFA_ENCRYPTION_KEY", MFA_ENCRYPTION_KEY)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let mut server = Server::start(cmd);
    server.wait_ready().await;
    let register = json!({ "input": { "name": "Zelda Secretname", "email": "zelda.private@example.org", "password": "hunter2-hunter2" } });
    let body = server.gql(crate::common::REGISTER, register).await;
    let token = body["data"]["register"]["accessToken"].as_str().unwrap().to_owned();
    let refresh = body["data"]["register"]["refreshToken"].as_str().unwrap().to_owned();
    server
        .gql(
            crate::common::LOGIN,
            json!({ "input": { "email": "zelda.private@example.org", "password": "wrong-password-1" } }),
        )
        .await;
    server.gql(crate::common::REFRESH, json!({ "t": refresh })).await;
    reqwest::Client::new()
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": crate::common::ME }))
        .send()
        .await
        .unwrap();
    // A password change, with a wrong current password and then the right one.
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { accessToken refreshToken } }";
    let mut changed = Value::Null;
    for current in ["wrong-current-9", "hunter2-hunter2"] {
        changed = reqwest::Client::new()
            .post(server.url("/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": change, "variables": { "c": current, "n": "brand-new-secret-7" } }))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
    }
    let new_token = changed["data"]["changePassword"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_refresh = changed["data"]["changePassword"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    // The second factor: enrolling, a wrong and a right code, logins with a
    // wrong code and a recovery code, and turning it off with another.
    let as_zelda = |query: &'static str, variables: Value| {
        let (server, token) = (&server, new_token.clone());
        async move {
            reqwest::Client::new()
                .post(server.url("/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let enrollment = as_zelda("mutation { beginTotpEnrollment { secret otpauthUri } }", json!({})).await;
    let secret = enrollment["data"]["beginTotpEnrollment"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = totp_rs::Totp::from_url(
        enrollment["data"]["beginTotpEnrollment"]["otpauthUri"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (wrong_code, code) = (app.generate(now + 300).to_string(), app.generate(now).to_string());
    let confirm = "mutation($c: String!) { confirmTotp(code: $c) }";
    as_zelda(confirm, json!({ "c": wrong_code })).await;
    let confirmed = as_zelda(confirm, json!({ "c": code })).await;
    let recovery: Vec<String> = confirmed["data"]["confirmTotp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    for totp in [wrong_code.as_str(), recovery[0].as_str()] {
        let login = json!({ "input": { "email": "zelda.private@example.org", "password": "brand-new-secret-7", "totpCode": totp } });
        server.gql(crate::common::LOGIN, login).await;
    }
    as_zelda(
        "mutation($p: String!, $c: String!) { disableTotp(password: $p, code: $c) }",
        json!({ "p": "brand-new-secret-7", "c": recovery[1] }),
    )
    .await;
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("request_id"), "the logs are there: {logs}");
    for secret in [
        "hunter2",
        "wrong-password-1",
        "wrong-current-9",
        "brand-new-secret-7",
        &new_token,
        &new_refresh,
        "Secretname",
        "zelda.private",
        &token,
        &refresh,
        JWT_SECRET,
        MFA_ENCRYPTION_KEY,
        &secret,
        &secret.to_lowercase(),
        "otpauth",
    ] {
        assert!(!logs.contains(secret), "the logs contain {secret}");
    }
    for code in recovery.iter().take(2) {
        assert!(!logs.contains(code.as_str()), "the logs contain a recovery code");
        assert!(
            !logs.contains(&code.replace('-', "")),
            "the logs contain a recovery code"
        );
    }
    // Six digits may be part of a longer number or a timestamp's fraction.
    for code in [&code, &wrong_code] {
        let alone = regex::Regex::new(&format!(r"(^|[^0-9.]){code}([^0-9]|$)")).unwrap();
        assert!(!alone.is_match(&logs), "the logs contain a TOTP code");
    }
}

#[test]
fn settings_come_from_a_dot_env_file_and_its_errors_do_not_echo_it() {
    let scratch = ScratchDir::new("dotenv");
    let run_in = |contents: &str| {
        std::fs::write(scratch.path().join(".env"), contents).unwrap();
        Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(scratch.path())
            .arg("serve")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run_in("JWT_SECRET=too-short\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("JWT_SECRET must be at least 32 bytes"), "{stderr}");
    let out = run_in("JWT_SECRET=\"s3cret-value-that-must-not-leak\nPORT=1\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(".env"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
