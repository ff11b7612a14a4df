//! Which access tokens are refused before they expire: those of a user whose
//! token version rose after they were issued (a password change, logging
//! out everywhere) and those of a disabled user. Each replica keeps the
//! users whose tokens were revoked within the access-token lifetime in
//! memory and polls PostgreSQL for new ones every `POLL_INTERVAL`, so that
//! checking a token costs no database round trip, and a revocation made on
//! any replica holds on every replica within `POLL_INTERVAL` plus a poll.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock, Weak},
    time::Duration,
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    db::{self, Db},
    error::AppResult,
};

/// How often each replica looks for revocations made elsewhere.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How far back each poll looks again, for a revocation whose transaction
/// took its timestamp before the last poll but committed after it.
const OVERLAP: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revoked {
    /// Tokens issued under an older version are refused.
    pub version: i32,
    pub disabled: bool,
    pub at: DateTime<Utc>,
}

#[derive(Default)]
pub struct Revocations {
    users: RwLock<HashMap<Uuid, Revoked>>,
    /// Where the next poll starts.
    since: RwLock<Option<DateTime<Utc>>>,
}

impl Revocations {
    /// Whether a token of `user` issued under `version` is still good.
    pub fn allows(&self, user: Uuid, version: i32) -> bool {
        let users = self.users.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        match users.get(&user) {
            None => true,
            Some(revoked) => !revoked.disabled && version >= revoked.version,
        }
    }

    /// Records a revocation (made here, or read from the database); the
    /// newest wins.
    /// This replica's own change, made just now: applied at once.
    pub fn record_now(&self, user: Uuid, version: i32, disabled: bool) {
        self.record(
            user,
            Revoked {
                version,
                disabled,
                at: Utc::now(),
            },
        );
    }

    pub fn record(&self, user: Uuid, revoked: Revoked) {
        let mut users = self.users.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = users.entry(user).or_insert(revoked);
        if (revoked.version, revoked.at) >= (entry.version, entry.at) {
            *entry = revoked;
        }
    }

    /// Reads the revocations made since the last poll (a little before it),
    /// and forgets those older than the tokens they could refuse.
    pub async fn poll(&self, db: &Db, token_lifetime: Duration) -> AppResult<()> {
        let horizon = Utc::now() - chrono::Duration::from_std(token_lifetime).unwrap_or_default();
        let since = self
            .since
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .map_or(horizon, |s| s - chrono::Duration::from_std(OVERLAP).unwrap_or_default());
        let started = Utc::now();
        let rows = db
            .run(async |conn| Ok(db::accounts::revoked_since(conn, since).await?))
            .await?;
        for (user, version, disabled, at) in rows {
            self.record(user, Revoked { version, disabled, at });
        }
        self.users
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|_, revoked| revoked.at > horizon);
        *self.since.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(started);
        Ok(())
    }

    /// Polls until the revocations are dropped (the server stopped).
    pub fn spawn_poller(this: &Arc<Self>, db: Db, token_lifetime: Duration) {
        let weak: Weak<Self> = Arc::downgrade(this);
        tokio::spawn(async move {
            loop {
                let Some(revocations) = weak.upgrade() else { return };
                if let Err(err) = revocations.poll(&db, token_lifetime).await {
                    tracing::warn!(error = %err, "could not read token revocations; trying again");
                }
                drop(revocations);
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_versions_and_disabled_users_are_refused() {
        let r = Revocations::default();
        let (ann, bo) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(r.allows(ann, 0));
        let now = Utc::now();
        r.record(
            ann,
            Revoked {
                version: 2,
                disabled: false,
                at: now,
            },
        );
        assert!(!r.allows(ann, 1));
        assert!(r.allows(ann, 2));
        assert!(r.allows(bo, 0));
        r.record(
            bo,
            Revoked {
                version: 1,
                disabled: true,
                at: now,
            },
        );
        assert!(!r.allows(bo, 1));
        // An older record does not undo a newer one.
        r.record(
            ann,
            Revoked {
                version: 1,
                disabled: false,
                at: now - chrono::Duration::seconds(5),
            },
        );
        assert!(!r.allows(ann, 1));
    }
}
