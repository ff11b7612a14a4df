//! The database: the connection pool (TLS when the URL asks for it), the
//! embedded cluster, migrations, and the generated table definitions.

pub mod accounts;
pub mod audit;
pub mod doctors;
pub mod embedded;
pub mod idempotency;
pub mod listen;
pub mod mappings;
pub mod migrate;
pub mod patients;
pub mod schema;
pub mod seal;
pub mod tls;
pub mod traces;

use std::{
    str::FromStr,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use diesel::ConnectionResult;
use diesel_async::{
    AsyncPgConnection,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
        deadpool::{Object, Pool},
    },
};
use futures_util::{FutureExt, future::BoxFuture};
use tracing::Instrument as _;

use crate::error::{AppError, AppResult};

pub type Conn = Object<AsyncPgConnection>;

/// Every statement is cut off after this long, so that no request can hold a
/// connection for ever.
const STATEMENT_TIMEOUT_MS: u64 = 30_000;

/// How long a connection may take to open where no setting says
/// (`DATABASE_CONNECT_TIMEOUT`'s default).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What sits between the server and PostgreSQL (`DATABASE_POOLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooler {
    /// PostgreSQL itself, or a session-mode pooler: a connection is the
    /// server's for as long as it is open.
    #[default]
    None,
    /// A transaction-mode pooler (PgBouncer `pool_mode = transaction`,
    /// Supabase's port 6543): a connection reaches the same PostgreSQL
    /// session only for the length of a transaction. The server then keeps
    /// no prepared statement past one and no session state, and runs each
    /// unit of work as one transaction (`Db::run`).
    Transaction,
}

/// How the pool connects.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub size: usize,
    /// The longest a request waits for a connection, a new one included.
    pub connect_timeout: Duration,
    pub pooler: Pooler,
}

/// The pool of connections to PostgreSQL.
#[derive(Clone)]
pub struct Db {
    pool: Pool<AsyncPgConnection>,
    connect_timeout: Duration,
    pooler: Pooler,
}

/// A unit of work on one connection (see `Db::run`): an async closure
/// taking the connection, whose future can be named and bounded (`Send`),
/// as diesel-async's own transaction closures are.
pub trait Work<C, R>: AsyncFnOnce(C) -> R + FnOnce(C) -> <Self as Work<C, R>>::Fut {
    type Fut: std::future::Future<Output = R>;
}

impl<F, C, Fut, R> Work<C, R> for F
where
    F: AsyncFnOnce(C) -> R + FnOnce(C) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    type Fut = Fut;
}

/// What `/metrics` reports of the pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolStatus {
    pub max_size: usize,
    pub size: usize,
    pub in_use: usize,
    pub waiting: usize,
}

impl Db {
    /// Builds the pool; connections are made on first use. While no
    /// database answers, a request gets `Unavailable` within
    /// `connect_timeout` (`DATABASE_CONNECT_TIMEOUT`).
    pub fn connect(url: &str, settings: PoolSettings) -> anyhow::Result<Self> {
        // Fail early, with the setting's name, if the URL does not parse.
        tokio_postgres::Config::from_str(url)
            .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL connection string"))?;
        let PoolSettings {
            size,
            connect_timeout,
            pooler,
        } = settings;
        let mut manager_config = ManagerConfig::default();
        manager_config.custom_setup = Box::new(move |url| open(url, connect_timeout, pooler));
        // No test query per checkout (a round trip each time): a connection
        // that a restart closed is dropped on its way out of the pool, since
        // the driver marks it closed. But a primary demoted without closing
        // its sessions (pg_auto_failover drains it read-only first) keeps
        // them open: for a while after a statement met a read-only server,
        // each connection is checked on checkout and a read-only one is
        // dropped, so that new ones find the new primary
        // (`target_session_attrs=read-write`).
        manager_config.recycling_method = RecyclingMethod::CustomFunction(Box::new(|conn| {
            if crate::telemetry::traces_on() {
                // A fresh set of statement spans for each checkout: what the
                // last holder abandoned ends here.
                diesel_async::AsyncConnection::set_instrumentation(conn, traces::StatementSpans::default());
            }
            async move {
                if read_only_recently() && is_read_only(conn).await? {
                    tracing::info!("dropping a pooled connection to a read-only server");
                    return Err(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::ReadOnlyTransaction,
                        Box::new("the server is read-only".to_owned()),
                    ));
                }
                Ok(())
            }
            .boxed()
        }));
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, manager_config);
        let pool = Pool::builder(manager)
            .max_size(size)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(connect_timeout))
            .create_timeout(Some(connect_timeout))
            .recycle_timeout(Some(connect_timeout))
            .build()?;
        Ok(Self {
            pool,
            connect_timeout,
            pooler,
        })
    }

    /// Runs `work` on one pooled connection. Directly on PostgreSQL it runs
    /// as it is: each statement outside a transaction of its own commits on
    /// its own, at no extra round trip. Through a transaction-mode pooler it
    /// runs as one transaction, the only span over which the pooler keeps
    /// this connection on one PostgreSQL session (a statement is prepared
    /// and then run in two steps). Work that opens a transaction of its own
    /// takes a connection with `conn` instead.
    pub async fn run<R, F>(&self, work: F) -> AppResult<R>
    where
        for<'r> F: Work<&'r mut AsyncPgConnection, AppResult<R>, Fut: Send> + Send,
        R: Send,
    {
        let mut conn = self.conn().await?;
        match self.pooler {
            Pooler::None => work(&mut conn).await,
            Pooler::Transaction => {
                let conn: &mut AsyncPgConnection = &mut conn;
                diesel_async::AsyncConnection::transaction(conn, work).await
            }
        }
    }

    /// A pooled connection, or `Unavailable` when none can be had in time:
    /// waiting for a free one and opening a new one take `connect_timeout`
    /// together, not each.
    pub async fn conn(&self) -> Result<Conn, AppError> {
        match tokio::time::timeout(self.connect_timeout, self.pool.get()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "no database connection");
                Err(AppError::Unavailable)
            }
            Err(_) => {
                tracing::warn!("no database connection within DATABASE_CONNECT_TIMEOUT");
                Err(AppError::Unavailable)
            }
        }
    }

    pub fn status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus {
            max_size: s.max_size,
            size: s.size,
            in_use: s.size.saturating_sub(s.available),
            waiting: s.waiting,
        }
    }

    /// True when the database answers a trivial query (sent unprepared,
    /// so that it needs no transaction through a pooler).
    pub async fn ping(&self) -> bool {
        use diesel_async::SimpleAsyncConnection as _;
        let check = async {
            let mut conn = self.conn().await.ok()?;
            conn.batch_execute("SELECT 1").await.ok()
        };
        matches!(tokio::time::timeout(Duration::from_secs(3), check).await, Ok(Some(_)))
    }
}

/// When a statement last met a read-only server (seconds since the epoch;
/// 0: never): the primary was demoted, and the pool and the notification
/// listener look for the new one. Process-wide, as the database is.
static READ_ONLY_SEEN: AtomicU64 = AtomicU64::new(0);

/// How long after a read-only error pooled connections are checked.
const READ_ONLY_WATCH_SECS: u64 = 60;

/// Records that a statement met a read-only server.
pub fn saw_read_only() {
    READ_ONLY_SEEN.store(unix_now().max(1), Ordering::Relaxed);
}

/// The last time a statement met a read-only server (0: never).
pub fn read_only_seen() -> u64 {
    READ_ONLY_SEEN.load(Ordering::Relaxed)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn read_only_recently() -> bool {
    let seen = read_only_seen();
    seen != 0 && unix_now().saturating_sub(seen) <= READ_ONLY_WATCH_SECS
}

/// Whether this connection's server takes no writes (a standby, or a
/// primary being demoted).
async fn is_read_only(conn: &mut AsyncPgConnection) -> diesel::QueryResult<bool> {
    use diesel_async::RunQueryDsl;
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "current_setting('transaction_read_only') = 'on'",
    ))
    .get_result(conn)
    .await
}

/// Opens one connection: TLS as the URL's `sslmode` asks, and the session
/// settings every connection of ours carries.
pub fn establish(url: &str) -> BoxFuture<'_, ConnectionResult<AsyncPgConnection>> {
    establish_within(url, CONNECT_TIMEOUT)
}

/// `establish`, giving up on each host of the URL after `connect_timeout`.
pub fn establish_within(url: &str, connect_timeout: Duration) -> BoxFuture<'_, ConnectionResult<AsyncPgConnection>> {
    open(url, connect_timeout, Pooler::None)
}

/// Opens one connection for the pool. Through a transaction-mode pooler it
/// sends no start-up options (PgBouncer refuses them; set
/// `statement_timeout` on the database role instead) and keeps no prepared
/// statement: each is prepared, run and closed within its transaction.
fn open(url: &str, connect_timeout: Duration, pooler: Pooler) -> BoxFuture<'_, ConnectionResult<AsyncPgConnection>> {
    async move {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        if pooler == Pooler::None {
            let options = format!(
                "{} -c statement_timeout={STATEMENT_TIMEOUT_MS}",
                config.get_options().unwrap_or_default()
            );
            config.options(options.trim());
        }
        if config.get_application_name().is_none() {
            config.application_name("healthcare-api");
        }
        config.connect_timeout(connect_timeout);
        let bad = |e: tokio_postgres::Error| diesel::ConnectionError::BadConnection(e.to_string());
        let client = if config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(bad)?;
            tokio::spawn(drive(connection));
            client
        } else {
            let tls = tls::connector().map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
            let (client, connection) = config.connect(tls).await.map_err(bad)?;
            tokio::spawn(drive(connection));
            client
        };
        if pooler == Pooler::None {
            return AsyncPgConnection::try_from(client).await;
        }
        // diesel-async sets the time zone and the encoding with prepared
        // statements as it starts: through a transaction-mode pooler they
        // must run in one transaction, and leave no statement behind (the
        // pooler passes the two settings on to every session it lends).
        use diesel_async::{AsyncConnection as _, SimpleAsyncConnection as _};
        client.batch_execute("BEGIN").await.map_err(bad)?;
        let mut conn = AsyncPgConnection::try_from(client).await?;
        conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
        conn.batch_execute("COMMIT")
            .await
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
        Ok(conn)
    }
    .instrument(if crate::telemetry::in_traced_span() {
        tracing::info_span!(
            target: crate::telemetry::TRACE_ONLY,
            "db.connect",
            otel.name = "connect",
            otel.kind = "client",
            db.system.name = "postgresql",
        )
    } else {
        tracing::Span::none()
    })
    .boxed()
}

/// Drives one connection until it closes, reading what the server says
/// between answers. A commit that PostgreSQL reports as done although its
/// wait for the synchronous standby was cut short (a demotion, a fast
/// shutdown, a cancel: "the transaction has already committed locally, but
/// might not have been replicated to the standby") is not a durable write:
/// a failover can lose it. The server says so with a warning just before it
/// reports the commit, so the connection is dropped right there, before the
/// commit's answer is read: the caller sees a lost connection, which it
/// answers as a retryable failure, never as success.
async fn drive<S, T>(mut connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt as _;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notice(notice)) if unsure_commit(&notice) => {
                tracing::warn!(
                    notice = notice.message(),
                    "a commit was not confirmed by the synchronous standby; dropping the connection so that it \
                     is not acknowledged"
                );
                return;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::debug!(error = %err, "a database connection closed");
                return;
            }
        }
    }
}

/// The warning of a commit whose wait for synchronous replication was cut
/// short (PostgreSQL's syncrep.c, in English as the server logs it).
fn unsure_commit(notice: &tokio_postgres::error::DbError) -> bool {
    notice.parsed_severity() == Some(tokio_postgres::error::Severity::Warning)
        && (notice.message().contains("wait for synchronous replication")
            || notice.detail().is_some_and(|d| d.contains("committed locally")))
}

/// The one row a statement that writes returns, once its commit is known:
/// `query.load(conn).await.and_then(one)`.
///
/// Run on its own, a statement commits after PostgreSQL has sent its rows:
/// `get_result` hands back the first row as soon as it arrives, before the
/// commit (and before any warning that the synchronous standby did not
/// confirm it), so a write could be answered as done and then be lost.
/// `load` reads the answer to its end (PostgreSQL's ready-for-query, which
/// follows the commit) at no extra round trip. Every write that returns rows
/// is read this way, in a transaction or not; `execute` reads to the end too.
pub fn one<U>(rows: Vec<U>) -> diesel::QueryResult<U> {
    rows.into_iter().next().ok_or(diesel::result::Error::NotFound)
}

/// The keyset condition "after this row" for a page ordered by `(key, id)`:
/// `(table.key, table.id) > (k, id)` ascending, `<` descending, as one row
/// comparison so that PostgreSQL walks the `(key, id)` index. Only the fixed
/// column names are text; the cursor's values are bound parameters.
pub fn keyset_after<QS>(
    table: KeysetTable,
    cursor: &crate::paging::Cursor,
    direction: crate::paging::Direction,
) -> Option<Box<dyn diesel::BoxableExpression<QS, diesel::pg::Pg, SqlType = diesel::sql_types::Bool>>>
where
    QS: 'static,
{
    use diesel::{dsl::sql, sql_types};

    use crate::paging::{Cursor, Direction};
    let cmp = match direction {
        Direction::Asc => ") > (",
        Direction::Desc => ") < (",
    };
    let prefix = table.as_str();
    Some(match cursor {
        Cursor::Name(name, id) => Box::new(
            sql::<sql_types::Bool>(&format!("({prefix}.name, {prefix}.id"))
                .sql(cmp)
                .bind::<sql_types::Text, _>(name.clone())
                .sql(", ")
                .bind::<sql_types::Uuid, _>(*id)
                .sql(")"),
        ),
        Cursor::CreatedAt(at, id) => Box::new(
            sql::<sql_types::Bool>(&format!("({prefix}.created_at, {prefix}.id"))
                .sql(cmp)
                .bind::<sql_types::Timestamptz, _>(*at)
                .sql(", ")
                .bind::<sql_types::Uuid, _>(*id)
                .sql(")"),
        ),
        Cursor::Seq(_) => return None,
    })
}

/// The tables that page by keyset.
#[derive(Debug, Clone, Copy)]
pub enum KeysetTable {
    Patients,
    Doctors,
    Mappings,
    Users,
}

impl KeysetTable {
    fn as_str(self) -> &'static str {
        match self {
            Self::Patients => "patients",
            Self::Doctors => "doctors",
            Self::Mappings => "mappings",
            Self::Users => "users",
        }
    }
}
