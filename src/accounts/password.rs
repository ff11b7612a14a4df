//! Password hashing with bcrypt, off the async workers and rationed, so that a
//! storm of logins cannot take every core from other requests.

use std::{sync::Arc, time::Duration};

use tokio::sync::{OnceCell, Semaphore};
use tracing::Instrument as _;

use crate::error::AppError;

/// How long a login waits for its turn at bcrypt before it is told to retry.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Passwords {
    cost: u32,
    /// Verified against for unknown emails, so that they cost the same work.
    dummy_hash: Arc<OnceCell<String>>,
    /// bcrypt runs at most this many at once.
    permits: Arc<Semaphore>,
}

impl Passwords {
    pub fn new(cost: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            cost,
            dummy_hash: Arc::new(OnceCell::new()),
            // Leave at least one core for everything else.
            permits: Arc::new(Semaphore::new(cores.saturating_sub(1).max(1))),
        }
    }

    pub async fn hash(&self, password: &str) -> Result<String, AppError> {
        let password = password.to_owned();
        let cost = self.cost;
        self.blocking(move || bcrypt::hash(password, cost).map_err(AppError::internal))
            .await?
    }

    /// Checks `password` against `hash`; with no hash (unknown email), does
    /// the same work against a dummy and answers false.
    pub async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool, AppError> {
        let known = hash.is_some();
        let hash = match hash {
            Some(h) => h,
            None => self.dummy_hash().await?.clone(),
        };
        let password = password.to_owned();
        let matches = self
            .blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await?;
        Ok(known && matches)
    }

    async fn dummy_hash(&self) -> Result<&String, AppError> {
        self.dummy_hash
            .get_or_try_init(|| self.hash("not a password anyone has"))
            .await
    }

    async fn blocking<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        let _permit = tokio::time::timeout(QUEUE_WAIT, self.permits.acquire())
            .await
            .map_err(|_| AppError::TooManyRequests)?
            .map_err(AppError::internal)?;
        let span = tracing::info_span!("bcrypt");
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .instrument(tracing::Span::current())
            .await
            .map_err(AppError::internal)
    }
}
