//! The `healthcare-api` command: `serve` (the default), `migrate`,
//! `print-schema`, `create-admin` and `audit verify|head`.

use std::{io::Write as _, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use healthcare_api::{
    accounts::{Accounts, limits::AuthLimiter, mfa::SecondFactor, password::Passwords, tokens::TokenKeys},
    app::{Application, Database, shutdown_signal},
    audit::seal::{self, SealKey, Verdict},
    config::Config,
    db::{Db, PoolSettings, migrate},
    graphql, telemetry,
};

/// mimalloc rather than glibc's malloc: GraphQL execution allocates many
/// small objects that one worker thread allocates and another frees, and
/// glibc's arenas serialise those frees behind a lock (measured: a third of
/// the server's CPU time under the nested-read bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "healthcare-api",
    version,
    about = "GraphQL API server for healthcare records"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write the GraphQL schema (SDL) to standard output.
    PrintSchema,
    /// Create an admin account; the password comes from ADMIN_PASSWORD or standard input.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Check or show the audit trail's seal.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the sealed chain: exit 0 when intact, 1 naming the first bad
    /// block and event, 2 when it could not be checked.
    Verify {
        /// A block hash recorded earlier (`audit head`, `auditSeal.headHash`)
        /// that must still be in the chain.
        #[arg(long, value_parser = parse_hash)]
        head: Option<seal::Hash>,
    },
    /// Print the newest block's number and hash.
    Head,
}

fn parse_hash(s: &str) -> Result<seal::Hash, String> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut hash).map_err(|_| "a block hash is 64 hexadecimal digits".to_owned())?;
    Ok(hash)
}

/// Two mimalloc options, each measured under the bench (bench/README.md);
/// `MIMALLOC_PURGE_DELAY` and `MIMALLOC_ARENA_EAGER_COMMIT` still override.
/// - Freed memory goes back to the system at once instead of after the
///   default 10 ms: about 5% of the nested read's throughput for a third less
///   RSS under load.
/// - Arenas are committed as they are used, not all at once (the default on
///   Linux): about 10 MiB less heap at the nested read's peak, and 13 MiB
///   less once the load has passed, at no measurable cost.
extern "C" fn tune_allocator() {
    // The options' numbers in mimalloc v2 and v3 (the default build), which
    // libmimalloc-sys does not name.
    const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    for (name, option, value) in [
        ("MIMALLOC_PURGE_DELAY", MI_OPTION_PURGE_DELAY, 0),
        ("MIMALLOC_ARENA_EAGER_COMMIT", MI_OPTION_ARENA_EAGER_COMMIT, 0),
    ] {
        if std::env::var_os(name).is_none() {
            // SAFETY: sets a process-wide option; runs before any other thread exists.
            unsafe { libmimalloc_sys::mi_option_set_default(option, value) };
        }
    }
}

/// Runs `tune_allocator` as a constructor, before the Rust runtime's first
/// allocation: mimalloc reserves its arena at the first allocation and reads
/// the eager-commit option only then, so setting it in `main` is too late.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

fn main() -> ExitCode {
    #[cfg(not(target_os = "linux"))]
    tune_allocator();
    let cli = Cli::parse();
    if let Some(Command::PrintSchema) = cli.command {
        let mut out = std::io::stdout().lock();
        return match out.write_all(graphql::sdl().as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match telemetry::init(config.log_format, &config.rust_log, config.traces) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = if let Some(Command::Audit { command }) = cli.command {
        runtime.block_on(audit(command, config))
    } else {
        match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {}", one_line(&err));
                ExitCode::FAILURE
            }
        }
    };
    // The spans of the last requests leave before the process does.
    telemetry.shutdown();
    code
}

fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(config).await?;
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate => {
            let mut database = Database::open(&config).await?;
            let result = migrate::run(database.direct_url.expose()).await;
            database.close().await;
            let applied = result?;
            eprintln!("applied {} migration(s)", applied.len());
            Ok(())
        }
        Command::PrintSchema | Command::Audit { .. } => Ok(()),
        Command::CreateAdmin { email, name } => {
            let password = match std::env::var("ADMIN_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    eprintln!("password for {email} (from standard input):");
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("could not read the password")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let mut database = Database::open(&config).await?;
            let result = create_admin(&config, &database, &name, &email, &password).await;
            database.close().await;
            let id = result?;
            eprintln!("created admin {id}");
            Ok(())
        }
    }
}

/// One line of a command's answer, on standard output.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// `audit verify` and `audit head`, on the database the server uses.
async fn audit(command: AuditCommand, config: Config) -> ExitCode {
    let checked = async {
        let mut database = Database::open(&config).await?;
        let result = async {
            let mut conn = healthcare_api::db::establish(database.direct_url.expose())
                .await
                .context("could not connect to the database")?;
            match command {
                AuditCommand::Verify { head } => {
                    let key = SealKey::new(&database.audit_seal_key);
                    // The longest a legitimate event waits for a seal that can see it.
                    let late = config.limits.request_timeout + config.audit_seal_interval;
                    seal::verify(&mut conn, &key, late, head).await.map(Some)
                }
                AuditCommand::Head => {
                    match seal::head(&mut conn).await? {
                        Some((number, hash)) => say(&format!("{number} {}", hex::encode(hash))),
                        None => say("0"),
                    }
                    Ok(None)
                }
            }
        }
        .await;
        database.close().await;
        result
    };
    match checked.await {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(verdict @ Verdict::Intact { .. })) => {
            say(&verdict.to_string());
            ExitCode::SUCCESS
        }
        Ok(Some(verdict)) => {
            say(&verdict.to_string());
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::from(2)
        }
    }
}

async fn create_admin(
    config: &Config,
    database: &Database,
    name: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    migrate::run(database.direct_url.expose()).await?;
    let db = Db::connect(
        database.url.expose(),
        PoolSettings {
            size: 1,
            ..config.pool_settings()
        },
    )?;
    let keys = TokenKeys::new(database.jwt_secret.expose().as_bytes(), config.access_token_ttl);
    let accounts = Accounts::new(
        db,
        keys,
        Passwords::new(config.bcrypt_cost, false),
        config.refresh_token_ttl,
        AuthLimiter::new(None),
        SecondFactor::new(&database.mfa_encryption_key, &config.mfa_issuer)?,
    );
    let user = accounts
        .create_admin(name, email, password)
        .await
        .map_err(|e| anyhow::anyhow!("create-admin: {e}"))?;
    Ok(user.id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
