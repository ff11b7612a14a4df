//! Configuration: read once from the environment (and `.env`) into one typed
//! `Config`. A missing or invalid setting is a one-line error naming it.

use std::{fmt, net::IpAddr, path::PathBuf, time::Duration};

use crate::accounts::limits::Rate;

/// A secret that never prints.
#[derive(Clone)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No cross-origin access (the default).
    None,
    Any,
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_batch: usize,
    /// Aliased fields in one operation, its fragments included.
    pub max_aliases: usize,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Live subscriptions on this server, all connections together.
    pub max_subscriptions: usize,
    /// Live subscriptions on one WebSocket connection.
    pub max_subscriptions_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 2000,
            max_batch: 10,
            max_aliases: 100,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_subscriptions: 10_000,
            max_subscriptions_per_connection: 50,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `None`: the embedded PostgreSQL cluster kept under `data_dir`.
    pub database_url: Option<SecretString>,
    /// What needs a session of its own (migrations under their advisory
    /// lock, `LISTEN`, the audit sealer) when `database_url` goes through a
    /// transaction-mode pooler; `None`: `database_url` itself.
    pub database_direct_url: Option<SecretString>,
    pub database_pooler: crate::db::Pooler,
    pub data_dir: PathBuf,
    pub host: IpAddr,
    pub port: u16,
    /// `None` only with the embedded database, which keeps one in `data_dir`.
    pub jwt_secret: Option<SecretString>,
    /// The audit seal's HMAC key; `None` only with the embedded database,
    /// which keeps one in `data_dir`.
    pub audit_seal_key: Option<SecretString>,
    /// How often committed audit events are sealed.
    pub audit_seal_interval: Duration,
    /// What the key that encrypts TOTP secrets is derived from; `None`
    /// only with the embedded database, which keeps one in `data_dir`.
    pub mfa_encryption_key: Option<SecretString>,
    /// The name authenticator apps show beside a code.
    pub mfa_issuer: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub bcrypt_cost: u32,
    pub database_pool_size: usize,
    /// How long a request waits for a database connection before it fails
    /// with a retryable error.
    pub database_connect_timeout: Duration,
    /// API requests served at once; more are refused at once with 503.
    pub max_concurrent_requests: usize,
    /// Register, login and refresh attempts per client address; `None`:
    /// no limit (`AUTH_RATE_LIMIT=off`).
    pub auth_rate_limit: Option<Rate>,
    /// Our own proxies in front of the server, whose `X-Forwarded-For`
    /// entries are believed.
    pub trusted_proxy_hops: usize,
    pub cors_allowed_origins: CorsOrigins,
    pub introspection: bool,
    /// Serve GraphiQL at `GET /graphql` to browsers.
    pub graphiql: bool,
    /// The manifest of the only documents run (`TRUSTED_DOCUMENTS`).
    pub trusted_documents: Option<PathBuf>,
    pub log_format: LogFormat,
    pub rust_log: String,
    /// Spans are exported over OTLP/HTTP (`OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set); the exporter reads the
    /// other `OTEL_*` settings itself.
    pub traces: bool,
    pub limits: Limits,
}

/// A bad setting: displayed as one line that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.setting, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn invalid(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        problem: problem.into(),
    }
}

pub const MIN_JWT_SECRET_BYTES: usize = 32;
pub const MIN_AUDIT_SEAL_KEY_BYTES: usize = 32;
pub const MIN_MFA_ENCRYPTION_KEY_BYTES: usize = 32;

impl Config {
    /// Reads `.env` (if present) and then the process environment.
    pub fn from_env() -> Result<Self, anyhow::Error> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            // Not the line itself: it may hold a secret.
            Err(dotenvy::Error::LineParse(_, index)) => {
                anyhow::bail!(".env could not be parsed at character {index} of a line")
            }
            Err(_) => anyhow::bail!(".env could not be read"),
        }
        Ok(Self::from_lookup(|key| std::env::var(key).ok())?)
    }

    /// Builds the configuration from any lookup (the environment, a test's map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| get(key).filter(|v| !v.trim().is_empty());

        let database_url = get("DATABASE_URL").map(SecretString::new);
        if let Some(url) = &database_url
            && url.expose().parse::<tokio_postgres::Config>().is_err()
        {
            return Err(invalid("DATABASE_URL", "is not a valid PostgreSQL connection string"));
        }
        let database_direct_url = get("DATABASE_DIRECT_URL").map(SecretString::new);
        if let Some(url) = &database_direct_url
            && url.expose().parse::<tokio_postgres::Config>().is_err()
        {
            return Err(invalid(
                "DATABASE_DIRECT_URL",
                "is not a valid PostgreSQL connection string",
            ));
        }
        let database_pooler = match get("DATABASE_POOLER").as_deref().map(str::trim) {
            None | Some("" | "none") => crate::db::Pooler::None,
            Some("transaction") => crate::db::Pooler::Transaction,
            Some(_) => return Err(invalid("DATABASE_POOLER", "must be `none` or `transaction`")),
        };
        if database_pooler == crate::db::Pooler::Transaction {
            if database_url.is_none() {
                return Err(invalid(
                    "DATABASE_POOLER",
                    "`transaction` needs DATABASE_URL (the pooler's address)",
                ));
            }
            if database_direct_url.is_none() {
                return Err(invalid(
                    "DATABASE_DIRECT_URL",
                    "must be set with DATABASE_POOLER=transaction: migrations, LISTEN and the audit sealer need a \
                     session of their own (a direct or session-mode URL)",
                ));
            }
        }
        let external = database_url.is_some();
        let jwt_secret = secret("JWT_SECRET", get("JWT_SECRET"), MIN_JWT_SECRET_BYTES, external)?;
        let audit_seal_key = secret(
            "AUDIT_SEAL_KEY",
            get("AUDIT_SEAL_KEY"),
            MIN_AUDIT_SEAL_KEY_BYTES,
            external,
        )?;
        let mfa_encryption_key = secret(
            "MFA_ENCRYPTION_KEY",
            get("MFA_ENCRYPTION_KEY"),
            MIN_MFA_ENCRYPTION_KEY_BYTES,
            external,
        )?;
        if let (Some(mfa), Some(jwt)) = (&mfa_encryption_key, &jwt_secret)
            && mfa.expose() == jwt.expose()
        {
            return Err(invalid("MFA_ENCRYPTION_KEY", "must differ from JWT_SECRET"));
        }
        let mfa_issuer = get("MFA_ISSUER").unwrap_or_else(|| "Healthcare API".to_owned());
        if mfa_issuer.chars().count() > 64 || mfa_issuer.contains(':') || mfa_issuer.chars().any(char::is_control) {
            return Err(invalid(
                "MFA_ISSUER",
                "must be at most 64 characters, without a colon or control characters",
            ));
        }
        // From 100 ms, for the tests that watch sealing.
        let audit_seal_interval = duration(
            "AUDIT_SEAL_INTERVAL",
            get("AUDIT_SEAL_INTERVAL"),
            Duration::from_secs(5),
            Duration::from_millis(100)..=Duration::from_secs(3600),
        )?;

        let host = parse_or("HOST", get("HOST"), "127.0.0.1".parse().ok(), |s| {
            s.parse::<IpAddr>().ok()
        })?;
        let port = parse_or("PORT", get("PORT"), Some(8000), |s| s.parse::<u16>().ok())?;
        let access_token_ttl = duration(
            "ACCESS_TOKEN_TTL",
            get("ACCESS_TOKEN_TTL"),
            Duration::from_secs(15 * 60),
            Duration::from_secs(1)..=Duration::from_secs(24 * 3600),
        )?;
        let refresh_token_ttl = duration(
            "REFRESH_TOKEN_TTL",
            get("REFRESH_TOKEN_TTL"),
            Duration::from_secs(30 * 24 * 3600),
            Duration::from_secs(1)..=Duration::from_secs(365 * 24 * 3600),
        )?;
        let bcrypt_cost = number("BCRYPT_COST", get("BCRYPT_COST"), 12, 4, 31)?;
        let database_pool_size = number(
            "DATABASE_POOL_SIZE",
            get("DATABASE_POOL_SIZE"),
            default_pool_size(),
            1,
            1000,
        )?;
        let database_connect_timeout = duration(
            "DATABASE_CONNECT_TIMEOUT",
            get("DATABASE_CONNECT_TIMEOUT"),
            crate::db::CONNECT_TIMEOUT,
            Duration::from_millis(100)..=Duration::from_secs(60),
        )?;
        let max_concurrent_requests = number(
            "MAX_CONCURRENT_REQUESTS",
            get("MAX_CONCURRENT_REQUESTS"),
            default_max_concurrent_requests(database_pool_size),
            1,
            100_000,
        )?;
        let auth_rate_limit = match get("AUTH_RATE_LIMIT").as_deref().map(str::trim) {
            Some("off") => None,
            raw => Some(Rate::parse(raw.unwrap_or(DEFAULT_AUTH_RATE_LIMIT)).ok_or_else(|| {
                invalid(
                    "AUTH_RATE_LIMIT",
                    "must be attempts per second, minute, hour or day (`20/min`), or `off`",
                )
            })?),
        };
        let trusted_proxy_hops = number("TRUSTED_PROXY_HOPS", get("TRUSTED_PROXY_HOPS"), 0, 0, 10)?;
        let cors_allowed_origins = cors(get("CORS_ALLOWED_ORIGINS"))?;
        let introspection = boolean("GRAPHQL_INTROSPECTION", get("GRAPHQL_INTROSPECTION"), true)?;
        let graphiql = boolean("GRAPHIQL", get("GRAPHIQL"), true)?;
        let trusted_documents = get("TRUSTED_DOCUMENTS").map(|p| PathBuf::from(p.trim()));
        let log_format = match get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(_) => return Err(invalid("LOG_FORMAT", "must be `pretty` or `json`")),
        };
        let rust_log = get("RUST_LOG").unwrap_or_else(|| "info".to_owned());
        if tracing_subscriber::EnvFilter::try_new(&rust_log).is_err() {
            return Err(invalid("RUST_LOG", "is not a valid log filter"));
        }
        let traces = traces(&get)?;
        let d = Limits::default();
        let limits = Limits {
            max_depth: number("GRAPHQL_MAX_DEPTH", get("GRAPHQL_MAX_DEPTH"), d.max_depth, 1, 1000)?,
            max_complexity: number(
                "GRAPHQL_MAX_COMPLEXITY",
                get("GRAPHQL_MAX_COMPLEXITY"),
                d.max_complexity,
                1,
                1_000_000,
            )?,
            max_batch: number("GRAPHQL_MAX_BATCH", get("GRAPHQL_MAX_BATCH"), d.max_batch, 1, 1000)?,
            max_aliases: number(
                "GRAPHQL_MAX_ALIASES",
                get("GRAPHQL_MAX_ALIASES"),
                d.max_aliases,
                1,
                100_000,
            )?,
            max_subscriptions: number(
                "MAX_SUBSCRIPTIONS",
                get("MAX_SUBSCRIPTIONS"),
                d.max_subscriptions,
                1,
                1_000_000,
            )?,
            max_subscriptions_per_connection: number(
                "MAX_SUBSCRIPTIONS_PER_CONNECTION",
                get("MAX_SUBSCRIPTIONS_PER_CONNECTION"),
                d.max_subscriptions_per_connection,
                1,
                10_000,
            )?,
            max_body_bytes: number(
                "MAX_BODY_BYTES",
                get("MAX_BODY_BYTES"),
                d.max_body_bytes,
                1024,
                64 << 20,
            )?,
            request_timeout: duration(
                "REQUEST_TIMEOUT",
                get("REQUEST_TIMEOUT"),
                d.request_timeout,
                Duration::from_secs(1)..=Duration::from_secs(3600),
            )?,
        };
        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "data".to_owned()));

        Ok(Self {
            database_url,
            database_direct_url,
            database_pooler,
            data_dir,
            host,
            port,
            jwt_secret,
            audit_seal_key,
            audit_seal_interval,
            mfa_encryption_key,
            mfa_issuer,
            access_token_ttl,
            refresh_token_ttl,
            bcrypt_cost,
            database_pool_size,
            database_connect_timeout,
            max_concurrent_requests,
            auth_rate_limit,
            trusted_proxy_hops,
            cors_allowed_origins,
            introspection,
            graphiql,
            trusted_documents,
            log_format,
            rust_log,
            traces,
            limits,
        })
    }
}

impl Config {
    /// How the request pool connects.
    pub fn pool_settings(&self) -> crate::db::PoolSettings {
        crate::db::PoolSettings {
            size: self.database_pool_size,
            connect_timeout: self.database_connect_timeout,
            pooler: self.database_pooler,
        }
    }
}

/// Four per core, at least 8: on 2 cores, 8 connections did better than 16
/// (more backends only take turns on the same cores) and, over the whole
/// bench, slightly better than 4 (bench/README.md).
pub fn default_pool_size() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 4).max(8)
}

/// Account attempts (register, login, refresh) per client address.
pub const DEFAULT_AUTH_RATE_LIMIT: &str = "20/min";

/// Two requests per pooled connection: enough to keep every connection busy
/// while requests parse, authenticate and serialise (the bench's 16
/// connections are all served on the default pool of 8), few enough that
/// under overload a served request queues behind one round of the pool at
/// most, and the CPU that refusing the rest costs does not push its p99
/// past three times what it is without the overload (bench/README.md,
/// "Overload"; four per connection gave 4.8 times).
pub fn default_max_concurrent_requests(pool_size: usize) -> usize {
    pool_size * 2
}

fn parse_or<T>(
    setting: &'static str,
    raw: Option<String>,
    default: Option<T>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, ConfigError> {
    match raw {
        Some(raw) => parse(raw.trim()).ok_or_else(|| invalid(setting, "is not valid")),
        None => default.ok_or_else(|| invalid(setting, "must be set")),
    }
}

fn number<T>(setting: &'static str, raw: Option<String>, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(raw) = raw else { return Ok(default) };
    match raw.trim().parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        _ => Err(invalid(setting, format!("must be a whole number from {min} to {max}"))),
    }
}

/// Seconds (`900`) or a human duration (`15m`, `30d`).
fn duration(
    setting: &'static str,
    raw: Option<String>,
    default: Duration,
    allowed: std::ops::RangeInclusive<Duration>,
) -> Result<Duration, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    let raw = raw.trim();
    let parsed = raw
        .parse::<u64>()
        .map(Duration::from_secs)
        .ok()
        .or_else(|| humantime::parse_duration(raw).ok());
    match parsed {
        Some(d) if allowed.contains(&d) => Ok(d),
        _ => Err(invalid(
            setting,
            format!(
                "must be a duration from {} to {} (seconds, or like `15m`)",
                humantime::format_duration(*allowed.start()),
                humantime::format_duration(*allowed.end())
            ),
        )),
    }
}

/// A secret of at least `min` bytes: required with an external database
/// (`external`), else kept in the data folder by the embedded default.
fn secret(
    setting: &'static str,
    raw: Option<String>,
    min: usize,
    external: bool,
) -> Result<Option<SecretString>, ConfigError> {
    match raw {
        Some(s) if s.len() < min => Err(invalid(setting, format!("must be at least {min} bytes"))),
        Some(s) => Ok(Some(SecretString::new(s))),
        None if external => Err(invalid(
            setting,
            format!("must be set (at least {min} bytes) when DATABASE_URL is set"),
        )),
        None => Ok(None),
    }
}

fn boolean(setting: &'static str, raw: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match raw.as_deref().map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(_) => Err(invalid(setting, "must be `true` or `false`")),
    }
}

/// Whether traces are exported: when an OTLP endpoint is set, unless
/// OpenTelemetry's own settings turn them off. The endpoint must be plain
/// HTTP, to a collector nearby (no TLS client is built in), and the
/// protocol protobuf over HTTP, the one built in.
fn traces(get: &impl Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
    const SETTINGS: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];
    let Some((setting, endpoint)) = SETTINGS.iter().find_map(|s| get(s).map(|v| (*s, v))) else {
        return Ok(false);
    };
    if boolean("OTEL_SDK_DISABLED", get("OTEL_SDK_DISABLED"), false)? {
        return Ok(false);
    }
    match get("OTEL_TRACES_EXPORTER").as_deref().map(str::trim) {
        None | Some("otlp") => {}
        Some("none") => return Ok(false),
        Some(_) => return Err(invalid("OTEL_TRACES_EXPORTER", "must be `otlp` or `none`")),
    }
    for protocol in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if get(protocol).is_some_and(|p| p.trim() != "http/protobuf") {
            return Err(invalid(protocol, "must be `http/protobuf`, the protocol built in"));
        }
    }
    let uri = endpoint.trim().parse::<axum::http::Uri>().ok();
    match uri.as_ref().map(|u| (u.scheme_str(), u.host())) {
        Some((Some("http"), Some(host))) if !host.is_empty() => Ok(true),
        Some((Some("https"), _)) => Err(invalid(
            setting,
            "must be an http:// address: no TLS client is built in, so send to a collector nearby (an \
             OpenTelemetry Collector on the host or beside it) that forwards over TLS",
        )),
        _ => Err(invalid(
            setting,
            "must be an http:// address such as http://127.0.0.1:4318",
        )),
    }
}

fn cors(raw: Option<String>) -> Result<CorsOrigins, ConfigError> {
    let Some(raw) = raw else { return Ok(CorsOrigins::None) };
    if raw.trim() == "*" {
        return Ok(CorsOrigins::Any);
    }
    let mut origins = Vec::new();
    for origin in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let ok = rest.is_some_and(|host| {
            !host.is_empty()
                && !host.contains('/')
                && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        });
        if !ok {
            return Err(invalid(
                "CORS_ALLOWED_ORIGINS",
                "must be `*` or a comma-separated list of origins like https://app.example.org",
            ));
        }
        origins.push(origin.to_owned());
    }
    Ok(CorsOrigins::List(origins))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_serve_the_embedded_database() {
        let c = config(&[]).unwrap();
        assert!(c.database_url.is_none() && c.jwt_secret.is_none() && c.audit_seal_key.is_none());
        assert_eq!(c.audit_seal_interval, Duration::from_secs(5));
        assert_eq!((c.host.to_string().as_str(), c.port), ("127.0.0.1", 8000));
        assert_eq!(c.access_token_ttl, Duration::from_secs(900));
        assert_eq!(c.refresh_token_ttl, Duration::from_secs(30 * 86400));
        assert_eq!(c.bcrypt_cost, 12);
        assert!(c.introspection && c.graphiql);
        assert_eq!(c.limits.max_aliases, 100);
        assert_eq!(c.limits.max_depth, 12);
        assert_eq!(c.limits.max_complexity, 2000);
        assert_eq!(c.limits.max_batch, 10);
        assert_eq!(c.limits.max_body_bytes, 1 << 20);
    }

    #[test]
    fn a_short_secret_is_named() {
        let err = config(&[("JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(err.to_string(), "JWT_SECRET must be at least 32 bytes");
    }

    #[test]
    fn an_external_database_needs_its_three_secrets() {
        const OTHER: &str = "fedcba9876543210fedcba9876543210";
        let err = config(&[("DATABASE_URL", "postgres://x/y")]).unwrap_err();
        assert_eq!(err.setting, "JWT_SECRET");
        let err = config(&[("DATABASE_URL", "postgres://x/y"), ("JWT_SECRET", SECRET)]).unwrap_err();
        assert_eq!(err.setting, "AUDIT_SEAL_KEY");
        let err = config(&[
            ("DATABASE_URL", "postgres://x/y"),
            ("JWT_SECRET", SECRET),
            ("AUDIT_SEAL_KEY", SECRET),
        ])
        .unwrap_err();
        assert_eq!(err.setting, "MFA_ENCRYPTION_KEY");
        // Not the JWT key itself.
        let err = config(&[
            ("DATABASE_URL", "postgres://x/y"),
            ("JWT_SECRET", SECRET),
            ("AUDIT_SEAL_KEY", SECRET),
            ("MFA_ENCRYPTION_KEY", SECRET),
        ])
        .unwrap_err();
        assert_eq!(err.to_string(), "MFA_ENCRYPTION_KEY must differ from JWT_SECRET");
        assert!(
            config(&[
                ("DATABASE_URL", "postgres://x/y"),
                ("JWT_SECRET", SECRET),
                ("AUDIT_SEAL_KEY", SECRET),
                ("MFA_ENCRYPTION_KEY", OTHER),
            ])
            .is_ok()
        );
    }

    #[test]
    fn each_bad_value_names_its_setting() {
        for (key, value) in [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("HOST", "localhost:1"),
            ("ACCESS_TOKEN_TTL", "0"),
            ("ACCESS_TOKEN_TTL", "soon"),
            ("REFRESH_TOKEN_TTL", "-1"),
            ("BCRYPT_COST", "3"),
            ("BCRYPT_COST", "32"),
            ("DATABASE_POOL_SIZE", "0"),
            ("CORS_ALLOWED_ORIGINS", "not a url"),
            ("GRAPHQL_INTROSPECTION", "maybe"),
            ("GRAPHIQL", "sometimes"),
            ("GRAPHQL_MAX_ALIASES", "0"),
            ("GRAPHQL_MAX_ALIASES", "many"),
            ("LOG_FORMAT", "xml"),
            ("RUST_LOG", "=[["),
            ("AUDIT_SEAL_KEY", "short"),
            ("AUDIT_SEAL_INTERVAL", "10ms"),
            ("AUDIT_SEAL_INTERVAL", "2h"),
            ("AUDIT_SEAL_INTERVAL", "often"),
            ("MFA_ENCRYPTION_KEY", "short"),
            ("MFA_ISSUER", "Clinic: north"),
            ("MFA_ISSUER", "Clinic\nnorth"),
        ] {
            let err = config(&[(key, value)]).unwrap_err();
            assert_eq!(err.setting, key, "{key}={value}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn durations_take_seconds_or_units() {
        let c = config(&[("ACCESS_TOKEN_TTL", "60"), ("REFRESH_TOKEN_TTL", "7d")]).unwrap();
        assert_eq!(c.access_token_ttl, Duration::from_secs(60));
        assert_eq!(c.refresh_token_ttl, Duration::from_secs(7 * 86400));
    }

    #[test]
    fn cors_origins_parse() {
        let c = config(&[("CORS_ALLOWED_ORIGINS", "https://a.example, http://localhost:3000")]).unwrap();
        assert_eq!(
            c.cors_allowed_origins,
            CorsOrigins::List(vec!["https://a.example".into(), "http://localhost:3000".into()])
        );
        assert_eq!(
            config(&[("CORS_ALLOWED_ORIGINS", "*")]).unwrap().cors_allowed_origins,
            CorsOrigins::Any
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let key = "a-seal-key-a-seal-key-a-seal-key-0";
        let c = config(&[
            ("DATABASE_URL", "postgres://u:pw@h/d"),
            ("JWT_SECRET", SECRET),
            ("AUDIT_SEAL_KEY", key),
            ("MFA_ENCRYPTION_KEY", "an-mfa-key-an-mfa-key-an-mfa-key-0"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("pw@") && !shown.contains(SECRET) && !shown.contains(key));
        assert!(!shown.contains("an-mfa-key"));
    }

    #[test]
    fn traces_are_on_only_with_a_plain_http_endpoint() {
        const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
        assert!(!config(&[]).unwrap().traces);
        assert!(!config(&[(ENDPOINT, "  ")]).unwrap().traces);
        assert!(config(&[(ENDPOINT, "http://127.0.0.1:4318")]).unwrap().traces);
        assert!(
            config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces")])
                .unwrap()
                .traces
        );
        for off in [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "none")] {
            assert!(!config(&[(ENDPOINT, "http://127.0.0.1:4318"), off]).unwrap().traces);
        }
        for bad in [
            "https://collector:4318",
            "collector:4318",
            "not a url",
            "ftp://x",
            "http://",
            "/v1/traces",
        ] {
            let err = config(&[(ENDPOINT, bad)]).unwrap_err();
            assert_eq!(err.setting, ENDPOINT, "{bad}");
            assert!(err.problem.contains("http://"), "{bad}: {err}");
        }
        let err = config(&[
            (ENDPOINT, "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap_err();
        assert_eq!(err.setting, "OTEL_EXPORTER_OTLP_PROTOCOL");
        let err = config(&[(ENDPOINT, "http://127.0.0.1:4318"), ("OTEL_TRACES_EXPORTER", "jaeger")]).unwrap_err();
        assert_eq!(err.setting, "OTEL_TRACES_EXPORTER");
        let err = config(&[(ENDPOINT, "http://127.0.0.1:4318"), ("OTEL_SDK_DISABLED", "maybe")]).unwrap_err();
        assert_eq!(err.setting, "OTEL_SDK_DISABLED");
    }
}
