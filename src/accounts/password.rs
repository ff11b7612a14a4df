//! Password hashing with bcrypt, off the async workers and rationed, so that a
//! storm of logins cannot take every core from other requests, nor one client
//! address every turn at it; and the commonly used passwords that a new
//! password may not be.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, LazyLock, Mutex},
    time::Duration,
};

use tokio::{
    sync::{OnceCell, Semaphore},
    time::Instant,
};
use tracing::Instrument as _;

use super::limits::client_key;
use crate::{error::AppError, input};

/// How long a login waits for its turn at bcrypt before it is told to retry.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// Jobs of one client address, running or waiting, per bcrypt worker.
const PER_ADDRESS: usize = 4;

/// Commonly used passwords, lower-cased and sorted by bytes: the 100,000
/// most common of SecLists' ten-million list that the length rules let
/// through (`scripts/common-passwords` names the source and remakes it).
static COMMON: LazyLock<Vec<&'static str>> = LazyLock::new(|| include_str!("common-passwords.txt").lines().collect());

/// Whether `password` is a commonly used one, in any letter case.
pub fn is_common(password: &str) -> bool {
    let lowered = password.to_lowercase();
    COMMON
        .binary_search_by(|entry| entry.as_bytes().cmp(lowered.as_bytes()))
        .is_ok()
}

#[derive(Clone)]
pub struct Passwords {
    cost: u32,
    /// Verified against for unknown emails, so that they cost the same work.
    dummy_hash: Arc<OnceCell<String>>,
    /// bcrypt runs at most this many at once.
    workers: usize,
    permits: Arc<Semaphore>,
    /// Each client address's share of the workers: at most `workers` of its
    /// jobs wait for a worker or run, so that another address's job waits
    /// behind one round of them at most, however many the first one sends.
    /// A few more wait for the address's turn; past `PER_ADDRESS` jobs in
    /// all, more are refused at once rather than queued, where they would
    /// hold on to the server's limit of requests at once.
    shares: Arc<Mutex<HashMap<IpAddr, Arc<Semaphore>>>>,
    /// Whether an address's jobs past `PER_ADDRESS` per worker are refused
    /// (with the per-client limits on) or wait their turn too.
    refuse_past_share: bool,
}

impl Passwords {
    /// `refuse_past_share`: part of the per-client limits, off with
    /// `AUTH_RATE_LIMIT=off`.
    pub fn new(cost: u32, refuse_past_share: bool) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Leave at least one core for everything else.
        let workers = cores.saturating_sub(1).max(1);
        Self {
            cost,
            dummy_hash: Arc::new(OnceCell::new()),
            workers,
            permits: Arc::new(Semaphore::new(workers)),
            shares: Arc::default(),
            refuse_past_share,
        }
    }

    pub async fn hash(&self, client: IpAddr, password: &str) -> Result<String, AppError> {
        let password = password.to_owned();
        let cost = self.cost;
        self.blocking(client, move || bcrypt::hash(password, cost).map_err(AppError::internal))
            .await?
    }

    /// Checks a typed `password` against `hash`; with no hash (unknown
    /// email), or a password no account can have (empty, over 72 bytes,
    /// with NUL), does the same work and answers false.
    pub async fn verify(&self, client: IpAddr, password: &str, hash: Option<String>) -> Result<bool, AppError> {
        let fits = !password.is_empty() && password.len() <= input::PASSWORD_MAX_BYTES && !password.contains('\0');
        let known = hash.is_some();
        let hash = match hash {
            Some(h) => h,
            None => self.dummy_hash(client).await?.clone(),
        };
        let password = if fits { password.to_owned() } else { String::new() };
        let matches = self
            .blocking(client, move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await?;
        Ok(fits && known && matches)
    }

    async fn dummy_hash(&self, client: IpAddr) -> Result<&String, AppError> {
        self.dummy_hash
            .get_or_try_init(|| self.hash(client, "not a password anyone has"))
            .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        client: IpAddr,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let deadline = Instant::now() + QUEUE_WAIT;
        let most = if self.refuse_past_share {
            self.workers * PER_ADDRESS
        } else {
            usize::MAX
        };
        let share = Share::take(&self.shares, client_key(client), self.workers, most)?;
        let _turn = tokio::time::timeout_at(deadline, share.semaphore()?.acquire())
            .await
            .map_err(|_| AppError::TooManyRequests)?
            .map_err(AppError::internal)?;
        let _permit = tokio::time::timeout_at(deadline, self.permits.acquire())
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

/// One address's share of the workers, held while its job waits or runs;
/// the last holder removes the address from the map.
struct Share<'a> {
    shares: &'a Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
    key: IpAddr,
    semaphore: Option<Arc<Semaphore>>,
}

impl<'a> Share<'a> {
    /// A place among the address's jobs, or a refusal to come back in a
    /// second when it has `most` already.
    fn take(
        shares: &'a Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
        key: IpAddr,
        workers: usize,
        most: usize,
    ) -> Result<Self, AppError> {
        let mut map = shares.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let semaphore = map.entry(key).or_insert_with(|| Arc::new(Semaphore::new(workers)));
        // The map's reference, and one per job of the address.
        if Arc::strong_count(semaphore) > most {
            return Err(AppError::RateLimited {
                retry_after: Duration::from_secs(1),
            });
        }
        Ok(Self {
            shares,
            key,
            semaphore: Some(semaphore.clone()),
        })
    }

    /// The address's turns at the workers.
    fn semaphore(&self) -> Result<&Semaphore, AppError> {
        self.semaphore
            .as_deref()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("no share")))
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let Some(semaphore) = self.semaphore.take() else {
            return;
        };
        let mut shares = self.shares.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Ours and the map's: nobody else holds or waits for this share.
        if Arc::strong_count(&semaphore) == 2 {
            shares.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_list_is_long_sorted_and_lower_case() {
        assert!(COMMON.len() >= 10_000, "{}", COMMON.len());
        assert!(COMMON.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()));
        assert!(COMMON.iter().all(|p| *p == p.to_lowercase() && p.chars().count() >= 8));
    }

    #[test]
    fn common_passwords_are_found_in_any_case() {
        for common in ["password", "Password1", "QWERTYUIOP", "iloveyou", "12345678"] {
            assert!(is_common(common), "{common}");
        }
        for rare in ["correct horse", "bench password", "tr0ub4dor&3-staple", ""] {
            assert!(!is_common(rare), "{rare}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_address_cannot_take_every_turn() {
        let passwords = Passwords::new(4, true);
        let flood: IpAddr = "127.0.0.2".parse().unwrap();
        let other: IpAddr = "127.0.0.3".parse().unwrap();
        // Many jobs at once from one address: `workers` of them wait for or
        // hold a worker, a few more wait for their turn, the rest are refused
        // at once; another address's job overtakes those waiting.
        let jobs_sent = passwords.workers * PER_ADDRESS + 3;
        let mut jobs = Vec::new();
        for _ in 0..jobs_sent {
            let p = passwords.clone();
            jobs.push(tokio::spawn(async move {
                p.blocking(flood, move || std::thread::sleep(Duration::from_millis(50)))
                    .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        passwords
            .blocking(other, || std::thread::sleep(Duration::from_millis(10)))
            .await
            .unwrap();
        let still_running = jobs.iter().filter(|j| !j.is_finished()).count();
        let mut refused = 0;
        for job in jobs {
            match job.await.unwrap() {
                Ok(()) => {}
                Err(AppError::RateLimited { retry_after }) => {
                    assert_eq!(retry_after, Duration::from_secs(1));
                    refused += 1;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(refused, 3);
        // Behind one round of the flood, not all of it.
        assert!(
            still_running >= jobs_sent - 3 - 2 * passwords.workers,
            "{still_running}"
        );
        assert!(passwords.shares.lock().unwrap().is_empty(), "the shares are given back");
        // Its turn over, the address is served again.
        passwords.blocking(flood, || ()).await.unwrap();
        // Without the per-client limits, they all wait their turn.
        let passwords = Passwords::new(4, false);
        let jobs: Vec<_> = (0..jobs_sent)
            .map(|_| {
                let p = passwords.clone();
                tokio::spawn(async move { p.blocking(flood, || ()).await })
            })
            .collect();
        for job in jobs {
            job.await.unwrap().unwrap();
        }
    }
}
