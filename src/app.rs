//! `Application`: opens the database (the embedded cluster or `DATABASE_URL`),
//! migrates it, assembles the routes, binds, and serves until told to stop.

use std::{future::Future, io::Write as _, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{Router, error_handling::HandleErrorLayer, routing::get};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, limit::GlobalConcurrencyLimitLayer, load_shed::LoadShedLayer};
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    accounts::{Accounts, limits::AuthLimiter, mfa::SecondFactor, password::Passwords, tokens::TokenKeys},
    audit::seal::{SealKey, Sealer},
    config::{
        Config, CorsOrigins, Limits, MIN_AUDIT_SEAL_KEY_BYTES, MIN_JWT_SECRET_BYTES, MIN_MFA_ENCRYPTION_KEY_BYTES,
        SecretString,
    },
    db::{
        Db,
        embedded::{EmbeddedPostgres, Options},
        listen::{self, Notifications},
        migrate,
    },
    graphql::{self, Schemas},
    http::{self, health, metrics::Metrics},
    mappings::events,
    rest,
    subscriptions::ws::{self, SubscriptionGate},
};

/// The embedded cluster's database name.
pub const EMBEDDED_DATABASE: &str = "healthcare";

/// The services every transport calls.
#[derive(Clone)]
pub struct Services {
    pub accounts: Accounts,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub db: Db,
    pub schemas: Schemas,
    /// Parsed GraphQL documents by their text.
    pub documents: Arc<graphql::documents::Documents>,
    pub notifications: Notifications,
    pub subscriptions: SubscriptionGate,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub cors: CorsOrigins,
    /// Our own proxies in front (`TRUSTED_PROXY_HOPS`).
    pub trusted_proxy_hops: usize,
    /// GraphiQL is served (`GRAPHIQL`).
    pub graphiql: bool,
    /// Documents sent by hash: APQ, or only the trusted ones.
    pub persisted: Arc<graphql::persisted::PersistedDocuments>,
}

/// The database the server uses, and the private cluster if it runs one.
pub struct Database {
    /// What requests use (through a transaction-mode pooler, with
    /// `DATABASE_POOLER=transaction`).
    pub url: SecretString,
    /// What needs a session of its own: migrations, `LISTEN`, the sealer
    /// (`DATABASE_DIRECT_URL`, or `url`).
    pub direct_url: SecretString,
    pub jwt_secret: SecretString,
    pub audit_seal_key: SecretString,
    pub mfa_encryption_key: SecretString,
    pub embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// `DATABASE_URL`, or the embedded cluster under `DATA_DIR` (started here).
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        if let Some(url) = &config.database_url {
            let jwt_secret = config
                .jwt_secret
                .clone()
                .context("JWT_SECRET must be set when DATABASE_URL is set")?;
            let audit_seal_key = config
                .audit_seal_key
                .clone()
                .context("AUDIT_SEAL_KEY must be set when DATABASE_URL is set")?;
            let mfa_encryption_key = config
                .mfa_encryption_key
                .clone()
                .context("MFA_ENCRYPTION_KEY must be set when DATABASE_URL is set")?;
            return Ok(Self {
                url: url.clone(),
                direct_url: config.database_direct_url.clone().unwrap_or_else(|| url.clone()),
                jwt_secret,
                audit_seal_key,
                mfa_encryption_key,
                embedded: None,
            });
        }
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("DATA_DIR {} could not be created", config.data_dir.display()))?;
        let jwt_secret = match &config.jwt_secret {
            Some(secret) => secret.clone(),
            None => kept_secret(&KEPT_JWT_SECRET, &config.data_dir)?,
        };
        let audit_seal_key = match &config.audit_seal_key {
            Some(key) => key.clone(),
            None => kept_secret(&KEPT_AUDIT_SEAL_KEY, &config.data_dir)?,
        };
        let mfa_encryption_key = match &config.mfa_encryption_key {
            Some(key) => key.clone(),
            None => kept_secret(&KEPT_MFA_ENCRYPTION_KEY, &config.data_dir)?,
        };
        let pg = EmbeddedPostgres::start(Options::new(config.data_dir.join("postgres")))
            .await
            .context("the embedded PostgreSQL could not start")?;
        pg.ensure_database(EMBEDDED_DATABASE).await?;
        let url = SecretString::new(pg.url(EMBEDDED_DATABASE));
        Ok(Self {
            direct_url: url.clone(),
            url,
            jwt_secret,
            audit_seal_key,
            mfa_encryption_key,
            embedded: Some(pg),
        })
    }

    pub async fn close(&mut self) {
        if let Some(pg) = self.embedded.as_mut()
            && let Err(err) = pg.stop().await
        {
            tracing::error!(error = %err, "the embedded PostgreSQL did not stop cleanly");
        }
    }
}

/// A secret the embedded default keeps in the data folder.
struct Kept {
    /// Its setting, which overrides the file.
    setting: &'static str,
    file: &'static str,
    min_bytes: usize,
}

const KEPT_JWT_SECRET: Kept = Kept {
    setting: "JWT_SECRET",
    file: "jwt_secret",
    min_bytes: MIN_JWT_SECRET_BYTES,
};

/// Never in the database, so that whoever can change the database cannot
/// also re-seal what they changed. Losing it does not lose the trail, only
/// the means to prove it intact.
const KEPT_AUDIT_SEAL_KEY: Kept = Kept {
    setting: "AUDIT_SEAL_KEY",
    file: "audit_seal_key",
    min_bytes: MIN_AUDIT_SEAL_KEY_BYTES,
};

/// Losing it turns every user's MFA off in effect: their codes can no longer
/// be checked, and they sign in with a recovery code or an admin's help.
const KEPT_MFA_ENCRYPTION_KEY: Kept = Kept {
    setting: "MFA_ENCRYPTION_KEY",
    file: "mfa_encryption_key",
    min_bytes: MIN_MFA_ENCRYPTION_KEY_BYTES,
};

/// The secret kept in the data folder: generated on first run.
fn kept_secret(kept: &Kept, data_dir: &Path) -> anyhow::Result<SecretString> {
    let path = data_dir.join(kept.file);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let secret = existing.trim().to_owned();
        anyhow::ensure!(
            secret.len() >= kept.min_bytes,
            "the {} kept in {} is shorter than {} bytes; delete it to make a new one",
            kept.setting,
            path.display(),
            kept.min_bytes
        );
        return Ok(SecretString::new(secret));
    }
    let mut bytes = [0u8; 48];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for {}: {e}", kept.setting))?;
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())?;
            file.sync_all()?;
            Ok(SecretString::new(secret))
        }
        // Another process wrote it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => kept_secret(kept, data_dir),
        Err(e) => Err(e).with_context(|| format!("could not keep the {} in {}", kept.setting, path.display())),
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    database: Database,
    state: AppState,
    sealer: Sealer,
}

impl Application {
    /// Opens and migrates the database, builds the routes and binds the port
    /// (port 0 picks a free one; see `port()`).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let mut database = Database::open(&config).await?;
        if let Some(pg) = &database.embedded
            && pg.run_elsewhere()
        {
            let by = pg.run_by().map(|pid| format!(" (pid {pid})")).unwrap_or_default();
            anyhow::bail!(
                "another server{by} already runs on the embedded database in {}: stop it first, or give \
                 every server the same DATABASE_URL",
                pg.dir().display()
            );
        }
        match Self::assemble(&config, &database).await {
            Ok((state, router)) => {
                let address = SocketAddr::new(config.host, config.port);
                let listener = match TcpListener::bind(address).await {
                    Ok(listener) => listener,
                    Err(err) => {
                        database.close().await;
                        return Err(err).with_context(|| format!("could not listen on {address} (HOST, PORT)"));
                    }
                };
                let sealer = Sealer::spawn(
                    database.direct_url.expose().to_owned(),
                    SealKey::new(&database.audit_seal_key),
                    config.audit_seal_interval,
                    state.metrics.audit_seal.clone(),
                );
                Ok(Self {
                    listener,
                    router,
                    database,
                    state,
                    sealer,
                })
            }
            Err(err) => {
                database.close().await;
                Err(err)
            }
        }
    }

    async fn assemble(config: &Config, database: &Database) -> anyhow::Result<(AppState, Router)> {
        let applied = migrate::run(database.direct_url.expose()).await?;
        if !applied.is_empty() {
            tracing::info!(count = applied.len(), "applied migrations");
        }
        let db = Db::connect(database.url.expose(), config.pool_settings())?;
        let keys = TokenKeys::new(database.jwt_secret.expose().as_bytes(), config.access_token_ttl);
        let accounts = Accounts::new(
            db.clone(),
            keys,
            Passwords::new(config.bcrypt_cost, config.auth_rate_limit.is_some()),
            config.refresh_token_ttl,
            AuthLimiter::new(config.auth_rate_limit),
            SecondFactor::new(&database.mfa_encryption_key, &config.mfa_issuer)?,
        );
        // A revoked token is refused until it would have expired anyway.
        accounts.follow_revocations(config.access_token_ttl + Duration::from_secs(60));
        let services = Services { accounts };
        let metrics = Arc::new(Metrics::new());
        let notifications = listen::spawn(database.direct_url.expose(), events::CHANNEL, 1024)?;
        let schemas = Schemas::build(&services, &db, &notifications, &config.limits, config.introspection);
        let subscriptions = SubscriptionGate::new(
            config.limits.max_subscriptions,
            config.limits.max_subscriptions_per_connection,
        );
        let persisted = match &config.trusted_documents {
            Some(manifest) => graphql::persisted::PersistedDocuments::trusted(manifest)?,
            None => graphql::persisted::PersistedDocuments::default(),
        };
        if persisted.is_trusted_only() {
            tracing::info!("GraphQL runs only the documents of TRUSTED_DOCUMENTS");
        }
        let state = AppState {
            services,
            db,
            schemas,
            documents: Arc::default(),
            notifications,
            subscriptions,
            metrics,
            limits: config.limits.clone(),
            cors: config.cors_allowed_origins.clone(),
            trusted_proxy_hops: config.trusted_proxy_hops,
            graphiql: config.graphiql,
            persisted: Arc::new(persisted),
        };
        let (rest, openapi) = rest::router();
        let rest = rest.with_state(rest::RestState {
            db: state.db.clone(),
            accounts: state.services.accounts.clone(),
        });
        // The API, under a limit of requests at once: past it a request is
        // refused at once (503, Retry-After) instead of queueing without
        // bound. Health checks and metrics stay outside, so that a busy
        // server is not taken for a dead one. Global: axum layers each route
        // on its own, and the limit is the server's.
        let api = Router::new()
            .route("/graphql", get(graphql::get).post(graphql::post))
            .route("/graphql/ws", get(ws::handler))
            .merge(rest)
            .layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(http::overloaded))
                    .layer(LoadShedLayer::new())
                    .layer(GlobalConcurrencyLimitLayer::new(config.max_concurrent_requests)),
            );
        let mut routes = Router::new().merge(api);
        if config.graphiql {
            routes = routes.route("/graphql/assets/{name}", get(graphql::asset));
        }
        let routes = routes
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .route("/metrics", get(http::metrics::handler))
            .merge(SwaggerUi::new(rest::DOCS_PATH).url(rest::OPENAPI_PATH, openapi))
            .fallback(http::not_found);
        let router = http::with_middleware(routes, &state);
        Ok((state, router))
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, lets in-flight requests finish,
    /// seals what they wrote, then stops the embedded cluster if there is one.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.listener.local_addr()?, "serving");
        // The peer's address, for the per-client limits.
        let router = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        self.sealer.stop().await;
        self.database.close().await;
        served.context("the server failed")
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
