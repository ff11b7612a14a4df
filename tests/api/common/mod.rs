//! `TestApp`: the real server on a free loopback port with a database of its
//! own, and helpers that talk to it like a client.

pub mod cluster;

use std::{collections::HashMap, time::Duration};

use healthcare_api::{
    app::{AppState, Application},
    config::Config,
};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const AUDIT_SEAL_KEY: &str = "test-seal-key-test-seal-key-test-seal-key";
pub const MFA_ENCRYPTION_KEY: &str = "test-mfa-key-test-mfa-key-test-mfa-key-0";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub db_url: String,
    pub client: reqwest::Client,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The database the app was given, when it is the app's own: dropped
    /// with it.
    database: Option<cluster::TestDb>,
}

/// A registered user with live tokens.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub token: String,
    pub refresh: String,
}

impl TestUser {
    /// The user of a `register` or `login` answer.
    fn from_session(email: String, session: &Value) -> Self {
        Self {
            id: session["user"]["id"].as_str().expect("id").to_owned(),
            email,
            token: session["accessToken"].as_str().expect("token").to_owned(),
            refresh: session["refreshToken"].as_str().expect("refresh").to_owned(),
        }
    }
}

/// A GraphQL answer: the HTTP status and the JSON body.
#[derive(Debug)]
pub struct Gql {
    pub status: u16,
    pub body: Value,
}

impl Gql {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The `extensions.code` of the first error (every error must have one).
    pub fn code(&self) -> Option<&str> {
        self.assert_errors_have_codes();
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    pub fn field(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["field"].as_str()
    }

    pub fn assert_ok(&self) -> &Value {
        assert!(self.body.get("errors").is_none(), "unexpected errors: {}", self.body);
        &self.body["data"]
    }

    #[track_caller]
    pub fn assert_code(&self, code: &str) {
        assert_eq!(self.code(), Some(code), "body: {}", self.body);
    }

    fn assert_errors_have_codes(&self) {
        if let Some(errors) = self.body["errors"].as_array() {
            for e in errors {
                assert!(e["extensions"]["code"].is_string(), "error without a code: {e}");
            }
        }
    }
}

/// A REST answer: status, headers and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Rest {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Rest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the REST error shape with this status, code and field.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        assert!(self.body["error"]["message"].is_string(), "body: {}", self.body);
        assert_eq!(self.body["error"]["field"].as_str(), field, "body: {}", self.body);
    }

    pub fn id(&self) -> String {
        self.body["id"].as_str().expect("an id").to_owned()
    }
}

pub fn settings(db_url: &str) -> HashMap<String, String> {
    [
        ("DATABASE_URL", db_url),
        ("JWT_SECRET", JWT_SECRET),
        ("AUDIT_SEAL_KEY", AUDIT_SEAL_KEY),
        ("MFA_ENCRYPTION_KEY", MFA_ENCRYPTION_KEY),
        // Seldom: the statement-count tests count every statement of the
        // app's database. The seal's own tests seal often.
        ("AUDIT_SEAL_INTERVAL", "1h"),
        ("PORT", "0"),
        ("BCRYPT_COST", "4"),
        // The tests sign up many users from one address; the limit's own
        // tests turn it on.
        ("AUTH_RATE_LIMIT", "off"),
        ("DATABASE_POOL_SIZE", "4"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// With settings changed by `change` (a map of environment variables).
    pub async fn spawn_with(change: impl FnOnce(&mut HashMap<String, String>)) -> Self {
        let database = cluster::cluster().database(true).await;
        let mut app = Self::spawn_on(&database.url, change).await;
        app.database = Some(database);
        app
    }

    /// On an existing database.
    pub async fn spawn_on(db_url: &str, change: impl FnOnce(&mut HashMap<String, String>)) -> Self {
        Self::try_spawn_on(db_url, change).await.expect("the app starts")
    }

    pub async fn try_spawn_on(db_url: &str, change: impl FnOnce(&mut HashMap<String, String>)) -> anyhow::Result<Self> {
        let mut vars = settings(db_url);
        change(&mut vars);
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = healthcare_api::telemetry::init(healthcare_api::config::LogFormat::Pretty, "info", false);
        }
        let config = Config::from_lookup(|k| vars.get(k).cloned())?;
        let app = Application::build(config).await?;
        let port = app.port();
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let served = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Ok(Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            db_url: db_url.to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            state,
            shutdown: Some(tx),
            served: Some(served),
            database: None,
        })
    }

    /// Stops serving (in-flight requests finish first); the app's own
    /// database goes with it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.expect("server task").expect("server stopped cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let resp = self.client.get(self.url("/metrics")).send().await.expect("metrics");
        resp.text().await.expect("metrics text")
    }

    pub async fn gql(&self, query: &str, variables: Value) -> Gql {
        self.gql_with(None, query, variables).await
    }

    pub async fn gql_as(&self, token: &str, query: &str, variables: Value) -> Gql {
        self.gql_with(Some(token), query, variables).await
    }

    pub async fn gql_with(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        self.gql_on(&self.client, token, query, variables).await
    }

    /// A client whose requests come from `address` (any of 127.0.0.0/8).
    pub fn client_from(address: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(address.parse::<std::net::IpAddr>().expect("an address"))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client")
    }

    /// A GraphQL request through `client`.
    pub async fn gql_on(&self, client: &reqwest::Client, token: Option<&str>, query: &str, variables: Value) -> Gql {
        let mut req = client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let body = resp.json().await.expect("JSON body");
        Gql { status, body }
    }

    /// POSTs a raw body to /graphql.
    pub async fn post_raw(&self, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url("/graphql"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// A REST request with an optional bearer token and JSON body.
    pub async fn rest(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Rest {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Self::rest_answer(req).await
    }

    /// Sends a prepared request and reads it as a REST answer.
    pub async fn rest_answer(req: reqwest::RequestBuilder) -> Rest {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Rest { status, headers, body }
    }

    pub async fn register(&self, name: &str, email: &str, password: &str) -> Gql {
        self.gql(
            REGISTER,
            json!({ "input": { "name": name, "email": email, "password": password } }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Gql {
        self.gql(LOGIN, json!({ "input": { "email": email, "password": password } }))
            .await
    }

    /// A server that runs only `documents` (`TRUSTED_DOCUMENTS`, keyed as
    /// graphql-codegen writes them), with the folder its manifest is in.
    pub async fn spawn_trusted(documents: &[&str]) -> (Self, cluster::ScratchDir) {
        use sha2::{Digest, Sha256};
        let scratch = cluster::ScratchDir::new("trusted");
        let manifest = scratch.path().join("persisted-documents.json");
        let listed: serde_json::Map<String, Value> = documents
            .iter()
            .map(|d| {
                (
                    format!("sha256:{}", hex::encode(Sha256::digest(d.as_bytes()))),
                    json!(d),
                )
            })
            .collect();
        std::fs::write(&manifest, Value::Object(listed).to_string()).expect("write the manifest");
        let path = manifest.display().to_string();
        let app = Self::spawn_with(move |s| {
            s.insert("TRUSTED_DOCUMENTS".into(), path);
        })
        .await;
        (app, scratch)
    }

    /// Registers `<name>@example.org` over REST (which trusted documents do
    /// not restrict) and returns its access token.
    pub async fn rest_signup(&self, name: &str) -> String {
        let body = json!({ "name": name, "email": format!("{name}@example.org"), "password": PASSWORD });
        let registered = self.rest("POST", "/api/auth/register", None, Some(body)).await;
        registered.body["accessToken"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }

    /// Registers `<name>@example.org` and returns its tokens.
    pub async fn signup(&self, name: &str) -> TestUser {
        let email = format!("{name}@example.org");
        let resp = self.register(name, &email, PASSWORD).await;
        TestUser::from_session(email, &resp.assert_ok()["register"])
    }

    /// Runs one SQL query on the app's database and returns the first column
    /// of the first row as a number.
    pub async fn count(&self, sql: &str) -> i64 {
        let client = cluster::connect(&self.db_url).await.expect("db connection");
        client.query_one(sql, &[]).await.expect("query").get(0)
    }
}

pub const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { accessToken tokenType expiresIn refreshToken user { id name email role createdAt } } }";
pub const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { accessToken tokenType expiresIn refreshToken user { id name email role createdAt } } }";
pub const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken user { id } } }";
pub const LOGOUT: &str = "mutation($t: String!) { logout(refreshToken: $t) }";
pub const ME: &str = "{ me { id name email role createdAt } }";

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The TCP port that process `pid` listens on (IPv4), once it does: the
/// socket among its open files that `/proc/net/tcp` lists as listening.
pub fn listening_port(pid: u32) -> Option<u16> {
    let sockets: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(str::to_owned)
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        // local_address, then state (0A: listening), then the inode tenth.
        let (local, state, inode) = (columns.get(1)?, columns.get(3)?, columns.get(9)?);
        if *state != "0A" || !sockets.iter().any(|s| s == inode) {
            return None;
        }
        u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()
    })
}

pub fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

pub const PATIENT_FIELDS: &str =
    "id name dateOfBirth gender email phone address medicalHistory createdAt updatedAt createdBy { id name }";

impl TestApp {
    /// Creates a patient as `token` and returns its id.
    pub async fn create_patient(&self, token: &str, name: &str) -> String {
        let resp = self
            .gql_as(
                token,
                "mutation($i: CreatePatientInput!) { createPatient(input: $i) { id } }",
                json!({ "i": { "name": name } }),
            )
            .await;
        resp.assert_ok()["createPatient"]["id"].as_str().expect("id").to_owned()
    }

    pub async fn create_doctor(&self, token: &str, name: &str, specialization: &str) -> String {
        let resp = self
            .gql_as(
                token,
                "mutation($i: CreateDoctorInput!) { createDoctor(input: $i) { id } }",
                json!({ "i": { "name": name, "specialization": specialization } }),
            )
            .await;
        resp.assert_ok()["createDoctor"]["id"].as_str().expect("id").to_owned()
    }

    pub async fn assign(&self, token: &str, patient: &str, doctor: &str) -> Gql {
        self.gql_as(
            token,
            "mutation($i: AssignDoctorInput!) { assignDoctor(input: $i) { id patient { id } doctor { id } assignedBy { id } createdAt } }",
            json!({ "i": { "patientId": patient, "doctorId": doctor } }),
        )
        .await
    }

    /// Makes an admin the way operators do: with the command line's service call.
    pub async fn admin(&self, name: &str) -> TestUser {
        let email = format!("{name}@example.org");
        self.state
            .services
            .accounts
            .create_admin(name, &email, PASSWORD)
            .await
            .expect("create admin");
        let resp = self.login(&email, PASSWORD).await;
        TestUser::from_session(email, &resp.assert_ok()["login"])
    }

    /// The name of the app's database.
    fn dbname(&self) -> String {
        self.db_url
            .split_whitespace()
            .find_map(|p| p.strip_prefix("dbname="))
            .expect("dbname")
            .to_owned()
    }

    /// Each statement the app's database has run, with how many times.
    pub async fn statement_calls(&self) -> Vec<(String, i64)> {
        let admin = cluster::connect(&cluster::cluster().url("postgres"))
            .await
            .expect("admin");
        admin
            .query(
                // Not the revocation poll, which every replica runs every
                // 2 s whatever the requests.
                "SELECT s.query, s.calls FROM pg_stat_statements s \
                 JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 \
                 AND s.query NOT LIKE '%\"tokens_revoked_at\" > $1%' ORDER BY s.query",
                &[&self.dbname()],
            )
            .await
            .expect("pg_stat_statements")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// Statements the app's database has run so far (pg_stat_statements).
    pub async fn statements(&self) -> i64 {
        self.statement_calls().await.iter().map(|(_, calls)| calls).sum()
    }
}
