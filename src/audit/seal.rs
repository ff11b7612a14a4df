//! The audit trail's seal: committed events are sealed, every
//! `AUDIT_SEAL_INTERVAL` and by one replica at a time, into a chain of blocks.
//! Each block lists the events it covers with the SHA-256 of each, and holds
//! an HMAC-SHA256 (keyed with `AUDIT_SEAL_KEY`, which the database never
//! sees) over those and the previous block's hash. `verify` recomputes the
//! chain, so that an event changed, deleted or slipped into sealed history,
//! or a block removed or moved, shows even when done by a database
//! superuser with the triggers off.
//!
//! Which events to seal: each event records the transaction that wrote it
//! (`tx`), and each block the horizon of its snapshot (every older
//! transaction had ended). An event whose transaction commits after a later
//! one was sealed is still at or past the newest horizon, so the next seal
//! finds it; nothing is skipped, and the gaps that rolled-back transactions
//! leave in the ids mean nothing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio::{sync::oneshot, task::JoinHandle};

use crate::{
    config::SecretString,
    db::{
        self, Db,
        seal::{self as store, BlockRow, HeadRow, SealedEventRow, Snapshot},
    },
    error::AppResult,
    viewer::Viewer,
};

pub type Hash = [u8; 32];

/// The key of every block's HMAC: `AUDIT_SEAL_KEY`'s bytes.
#[derive(Clone)]
pub struct SealKey(Arc<[u8]>);

impl SealKey {
    pub fn new(secret: &SecretString) -> Self {
        Self(secret.expose().as_bytes().into())
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        Hmac::<Sha256>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

const EVENT_FORM: &[u8] = b"healthcare-api audit event v1\0";
const BLOCK_FORM: &[u8] = b"healthcare-api audit block v1\0";

/// The sealed form of an event: every column, in a fixed order, each of
/// variable length prefixed with its length, so that no two events share one.
fn event_form(e: &SealedEventRow, out: &mut Vec<u8>) {
    fn uuid(out: &mut Vec<u8>, id: Option<uuid::Uuid>) {
        match id {
            Some(id) => {
                out.push(1);
                out.extend_from_slice(id.as_bytes());
            }
            None => out.push(0),
        }
    }
    fn text(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            Some(s) => {
                out.push(1);
                out.extend_from_slice(&(s.len() as u64).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            None => out.push(0),
        }
    }
    out.extend_from_slice(EVENT_FORM);
    out.extend_from_slice(&e.event.id.to_be_bytes());
    out.extend_from_slice(&e.event.at.timestamp_micros().to_be_bytes());
    uuid(out, e.event.actor_id);
    text(out, Some(&e.event.action));
    text(out, Some(&e.event.entity_type));
    uuid(out, e.event.entity_id);
    text(out, e.event.request_id.as_deref());
    out.extend_from_slice(&(e.event.entity_ids.len() as u64).to_be_bytes());
    for id in &e.event.entity_ids {
        out.extend_from_slice(id.as_bytes());
    }
    out.extend_from_slice(&e.tx.to_be_bytes());
}

/// SHA-256 of the event's sealed form.
pub fn digest(e: &SealedEventRow) -> Hash {
    let mut form = Vec::with_capacity(256);
    event_form(e, &mut form);
    Sha256::digest(&form).into()
}

/// The block's HMAC over the previous block's hash and everything the block
/// holds but the hash itself.
fn block_mac(key: &SealKey, previous: &Hash, b: &BlockRow) -> Hmac<Sha256> {
    let mut mac = key.mac();
    mac.update(BLOCK_FORM);
    mac.update(previous);
    for n in [
        b.number,
        b.sealed_at.timestamp_micros(),
        b.horizon,
        b.newest_tx,
        b.last_event,
        i64::from(b.complete),
        b.sealed_total,
        b.event_ids.len() as i64,
    ] {
        mac.update(&n.to_be_bytes());
    }
    for id in &b.event_ids {
        mac.update(&id.to_be_bytes());
    }
    mac.update(&b.digests);
    mac
}

/// The hash of the first block's predecessor.
const GENESIS: Hash = [0; 32];

fn as_hash(bytes: &[u8]) -> Hash {
    let mut hash = GENESIS;
    if bytes.len() == hash.len() {
        hash.copy_from_slice(bytes);
    }
    hash
}

/// The most events one block seals: a backlog (say, after the servers were
/// down) is sealed in blocks of this size, so that the sealer's memory
/// stays small.
pub const MAX_BLOCK_EVENTS: usize = 10_000;

/// The block that seals `events` (in id order) after `head`. When they are
/// not all that wait (`complete` false), the horizon stays where it was:
/// events left for the next block may be of older transactions.
fn next_block(
    key: &SealKey,
    head: Option<&HeadRow>,
    snapshot: Snapshot,
    events: &[SealedEventRow],
    complete: bool,
) -> BlockRow {
    let mut digests = Vec::with_capacity(events.len() * 32);
    let mut form = Vec::with_capacity(256);
    for e in events {
        form.clear();
        event_form(e, &mut form);
        digests.extend_from_slice(&Sha256::digest(&form));
    }
    let previous = head.map_or(GENESIS, |h| as_hash(&h.hash));
    let previous_horizon = head.map_or(0, |h| h.horizon);
    let mut block = BlockRow {
        number: head.map_or(0, |h| h.number) + 1,
        sealed_at: snapshot.now,
        // Never behind the previous block's.
        horizon: if complete {
            snapshot.horizon.max(previous_horizon)
        } else {
            previous_horizon
        },
        newest_tx: events.iter().map(|e| e.tx).max().unwrap_or_default(),
        event_ids: events.iter().map(|e| e.event.id).collect(),
        last_event: events.last().map_or(0, |e| e.event.id),
        complete,
        digests,
        sealed_total: head.map_or(0, |h| h.sealed_total) + events.len() as i64,
        hash: Vec::new(),
    };
    block.hash = block_mac(key, &previous, &block).finalize().into_bytes().to_vec();
    block
}

/// A block just sealed.
#[derive(Debug, Clone, Copy)]
pub struct Sealed {
    pub block: i64,
    pub events: usize,
    /// False when more events may wait than one block takes.
    pub complete: bool,
}

/// Seals every committed event no block covers yet into one new block,
/// unless another sealer holds the lock or there is nothing to seal.
///
/// One repeatable-read transaction, so that the horizon recorded and the
/// events read are of the same snapshot. That snapshot is taken just before
/// the lock: a sealer that commits in between is seen through the block
/// number it took, which this one then fails to insert (and retries later).
pub async fn seal_once(conn: &mut AsyncPgConnection, key: &SealKey) -> anyhow::Result<Option<Sealed>> {
    conn.build_transaction()
        .repeatable_read()
        .run(async |tx| {
            if !store::try_lock(tx).await? {
                return Ok(None);
            }
            let snapshot = store::snapshot(tx).await?;
            let head = store::head(tx).await?;
            let horizon = head.as_ref().map_or(0, |h| h.horizon);
            let limit = MAX_BLOCK_EVENTS as i64;
            // Within a backlog: the next full block after the previous one's
            // last event. A block so read leaves the horizon alone, so any
            // event it cannot see (a late commit with a smaller id) waits
            // for the block that ends the backlog, which reads everything.
            let mut events = Vec::new();
            if let Some(h) = head.as_ref().filter(|h| !h.complete) {
                events = store::unsealed(tx, horizon, Some(h.last_event), limit).await?;
                if events.len() < MAX_BLOCK_EVENTS {
                    events.clear();
                }
            }
            let complete = if events.is_empty() {
                events = store::unsealed(tx, horizon, None, limit).await?;
                events.len() < MAX_BLOCK_EVENTS
            } else {
                false
            };
            if events.is_empty() {
                return Ok(None);
            }
            let block = next_block(key, head.as_ref(), snapshot, &events, complete);
            store::insert_block(tx, &block).await?;
            Ok(Some(Sealed {
                block: block.number,
                events: events.len(),
                complete,
            }))
        })
        .await
}

/// What the sealer last saw of the events waiting for a seal, for `/metrics`.
#[derive(Debug)]
pub struct SealWatch {
    /// Microseconds since the epoch of the oldest waiting event; `i64::MIN`
    /// when none waits.
    oldest_pending: AtomicI64,
    pending: AtomicI64,
}

impl Default for SealWatch {
    fn default() -> Self {
        Self {
            oldest_pending: AtomicI64::new(i64::MIN),
            pending: AtomicI64::new(0),
        }
    }
}

impl SealWatch {
    fn set(&self, pending: store::Pending) {
        let oldest = pending.oldest.map_or(i64::MIN, |at| at.timestamp_micros());
        self.oldest_pending.store(oldest, Ordering::Relaxed);
        self.pending.store(pending.events, Ordering::Relaxed);
    }

    /// Seconds since the oldest waiting event happened (0 when none waits).
    pub fn oldest_pending_age(&self, now: DateTime<Utc>) -> f64 {
        match self.oldest_pending.load(Ordering::Relaxed) {
            i64::MIN => 0.0,
            micros => (now.timestamp_micros().saturating_sub(micros)).max(0) as f64 / 1e6,
        }
    }

    pub fn pending(&self) -> i64 {
        self.pending.load(Ordering::Relaxed)
    }
}

/// The sealer of one server: a task with a connection of its own, off the
/// request path, that tries to seal every interval (the replica that gets
/// the lock does) and then notes what still waits.
/// Dropped without `stop`, its task ends at once.
pub struct Sealer {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// The longest the last seal may take when the server stops.
const LAST_SEAL: Duration = Duration::from_secs(10);

impl Sealer {
    pub fn spawn(url: String, key: SealKey, interval: Duration, watch: Arc<SealWatch>) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut conn = None;
            let start = tokio::time::Instant::now() + interval;
            let mut ticks = tokio::time::interval_at(start, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let last = tokio::select! {
                    _ = ticks.tick() => false,
                    _ = &mut stopped => true,
                };
                if last {
                    // What the last requests wrote, so that it does not wait for the next server.
                    let _ = tokio::time::timeout(LAST_SEAL, round(&url, &key, &watch, &mut conn)).await;
                    break;
                }
                round(&url, &key, &watch, &mut conn).await;
            }
        });
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Seals once more and stops.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn round(url: &str, key: &SealKey, watch: &SealWatch, conn: &mut Option<AsyncPgConnection>) {
    if conn.is_none() {
        match db::establish(url).await {
            Ok(c) => *conn = Some(c),
            Err(err) => {
                tracing::warn!(error = %err, "the audit sealer could not connect");
                return;
            }
        }
    }
    let Some(c) = conn.as_mut() else { return };
    let result = async {
        // Block after block while a backlog lasts.
        while let Some(s) = seal_once(c, key).await? {
            tracing::debug!(block = s.block, events = s.events, "sealed audit events");
            if s.complete {
                break;
            }
        }
        anyhow::Ok(store::pending(c).await?)
    }
    .await;
    match result {
        Ok(pending) => watch.set(pending),
        Err(err) => {
            tracing::warn!(error = %err, "could not seal the audit trail; trying again later");
            *conn = None;
        }
    }
}

/// The seal's state, for admins.
#[derive(Debug, Clone)]
pub struct SealStatus {
    pub sealed_events: i64,
    pub pending_events: i64,
    /// 0 before the first seal.
    pub head_block: i64,
    pub head_hash: Option<Hash>,
    pub sealed_at: Option<DateTime<Utc>>,
}

pub async fn status(db: &Db, viewer: &Viewer) -> AppResult<SealStatus> {
    viewer.require_admin()?;
    db.run(async |conn| {
        let head = store::head(conn).await?;
        let pending = store::pending(conn).await?;
        Ok(SealStatus {
            sealed_events: head.as_ref().map_or(0, |h| h.sealed_total),
            pending_events: pending.events,
            head_block: head.as_ref().map_or(0, |h| h.number),
            head_hash: head.as_ref().map(|h| as_hash(&h.hash)),
            sealed_at: head.map(|h| h.sealed_at),
        })
    })
    .await
}

/// The newest block's number and hash (`None` before the first seal).
pub async fn head(conn: &mut AsyncPgConnection) -> anyhow::Result<Option<(i64, Hash)>> {
    Ok(store::head(conn).await?.map(|h| (h.number, as_hash(&h.hash))))
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        blocks: i64,
        sealed: i64,
        pending: usize,
        head: Option<(i64, Hash)>,
    },
    /// The first bad block (the one that should hold what is missing, when a
    /// block is gone) and, where one is to blame, the event.
    Broken {
        block: i64,
        event: Option<i64>,
        problem: String,
    },
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Intact {
                blocks,
                sealed,
                pending,
                head,
            } => {
                write!(
                    f,
                    "audit trail intact: {blocks} block(s) seal {sealed} event(s); {pending} event(s) wait for the next seal"
                )?;
                if let Some((number, hash)) = head {
                    write!(f, "; head block {number} {}", hex::encode(hash))?;
                }
                Ok(())
            }
            Self::Broken { block, event, problem } => {
                write!(f, "audit trail broken at block {block}")?;
                if let Some(event) = event {
                    write!(f, ", event {event}")?;
                }
                write!(f, ": {problem}")
            }
        }
    }
}

fn broken(block: i64, event: Option<i64>, problem: impl Into<String>) -> Verdict {
    Verdict::Broken {
        block,
        event,
        problem: problem.into(),
    }
}

/// A block as `verify` remembers it once checked.
#[derive(Debug, Clone, Copy)]
struct Checked {
    number: i64,
    sealed_at: DateTime<Utc>,
    horizon: i64,
    hash: Hash,
    sealed_total: i64,
}

/// How many blocks `verify` reads at a time.
const BLOCKS_PER_READ: i64 = 50;

/// Recomputes the whole chain. `late` is the longest a legitimate event can
/// wait between happening and a seal that could see it committed
/// (`REQUEST_TIMEOUT` plus `AUDIT_SEAL_INTERVAL`); `head`, a block hash
/// recorded earlier, must still be in the chain.
pub async fn verify(
    conn: &mut AsyncPgConnection,
    key: &SealKey,
    late: Duration,
    head: Option<Hash>,
) -> anyhow::Result<Verdict> {
    let late = chrono::Duration::from_std(late)?;
    let repeats = store::resealed(conn).await?;
    let mut chain: Vec<Checked> = Vec::new();
    let mut chain_problem = None;
    'walk: loop {
        let after = chain.last().map_or(0, |b| b.number);
        let blocks = store::blocks_after(conn, after, BLOCKS_PER_READ).await?;
        if blocks.is_empty() {
            break;
        }
        for block in blocks {
            let previous = chain.last().copied();
            if let Some(problem) = check_block(conn, key, previous, &block, &repeats, late).await? {
                chain_problem = Some(problem);
                break 'walk;
            }
            chain.push(Checked {
                number: block.number,
                sealed_at: block.sealed_at,
                horizon: block.horizon,
                hash: as_hash(&block.hash),
                sealed_total: block.sealed_total,
            });
        }
    }
    // Events no block lists: waiting for the next seal, or added afterwards.
    let mut pending = 0;
    let mut outside_problem = None;
    for event in store::outside_blocks(conn).await? {
        let should_have_sealed = chain
            .iter()
            .find(|b| event.tx < b.horizon || event.at < b.sealed_at - late);
        match should_have_sealed {
            Some(b) => {
                outside_problem = Some(broken(
                    b.number,
                    Some(event.id),
                    format!(
                        "an event dated {} was added afterwards: this block, sealed at {}, should cover it, and no block does",
                        event.at.to_rfc3339(),
                        b.sealed_at.to_rfc3339()
                    ),
                ));
                break;
            }
            None => pending += 1,
        }
    }
    let first = [chain_problem, outside_problem]
        .into_iter()
        .flatten()
        .min_by_key(|v| match v {
            Verdict::Broken { block, .. } => *block,
            Verdict::Intact { .. } => i64::MAX,
        });
    if let Some(problem) = first {
        return Ok(problem);
    }
    let newest = chain.last();
    if let Some(wanted) = head
        && !chain.iter().any(|b| b.hash == wanted)
    {
        return Ok(broken(
            newest.map_or(1, |b| b.number + 1),
            None,
            format!(
                "the block with hash {} is no longer in the chain (the newest block now is {})",
                hex::encode(wanted),
                newest.map_or(0, |b| b.number)
            ),
        ));
    }
    Ok(Verdict::Intact {
        blocks: chain.len() as i64,
        sealed: newest.map_or(0, |b| b.sealed_total),
        pending,
        head: newest.map(|b| (b.number, b.hash)),
    })
}

/// The first thing wrong with one block, if any: its place in the chain, its
/// events (gone, changed, sealed twice, or dated before the previous seal by
/// more than a late commit can be), then its own HMAC.
async fn check_block(
    conn: &mut AsyncPgConnection,
    key: &SealKey,
    previous: Option<Checked>,
    block: &BlockRow,
    repeats: &[store::Resealed],
    late: chrono::Duration,
) -> anyhow::Result<Option<Verdict>> {
    let expected = previous.map_or(1, |p| p.number + 1);
    if block.number != expected {
        return Ok(Some(broken(
            expected,
            None,
            format!(
                "the block is missing: the chain goes from block {} to block {}",
                expected - 1,
                block.number
            ),
        )));
    }
    let rows = store::events_by_ids(conn, &block.event_ids).await?;
    let rows: std::collections::HashMap<i64, SealedEventRow> = rows.into_iter().map(|r| (r.event.id, r)).collect();
    for (i, id) in block.event_ids.iter().enumerate() {
        let event = Some(*id);
        let Some(row) = rows.get(id) else {
            return Ok(Some(broken(block.number, event, "the event was deleted")));
        };
        if block.digests.get(i * 32..(i + 1) * 32) != Some(&digest(row)[..]) {
            return Ok(Some(broken(block.number, event, "the event was changed")));
        }
        if row.event.at > block.sealed_at {
            return Ok(Some(broken(
                block.number,
                event,
                "the event is dated after the block that seals it",
            )));
        }
        if let Some(p) = previous
            && row.event.at < p.sealed_at - late
        {
            return Ok(Some(broken(
                block.number,
                event,
                format!(
                    "an event dated {} was added afterwards: block {}, sealed at {}, should have covered it",
                    row.event.at.to_rfc3339(),
                    p.number,
                    p.sealed_at.to_rfc3339()
                ),
            )));
        }
    }
    if let Some(r) = repeats.iter().find(|r| r.again_in == block.number) {
        return Ok(Some(broken(
            block.number,
            Some(r.id),
            format!("the event was sealed already in block {}", r.first_block),
        )));
    }
    let previous_hash = previous.map_or(GENESIS, |p| p.hash);
    if block_mac(key, &previous_hash, block).verify_slice(&block.hash).is_err() {
        return Ok(Some(broken(
            block.number,
            None,
            "the block's seal does not match: the block was changed, or blocks were removed or reordered \
             (or AUDIT_SEAL_KEY is not the key that sealed it)",
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SealKey {
        SealKey::new(&SecretString::new(s.to_owned()))
    }

    fn event(id: i64) -> SealedEventRow {
        SealedEventRow {
            event: crate::db::audit::AuditRow {
                id,
                at: DateTime::from_timestamp(1_800_000_000, 123_000).unwrap_or_default(),
                actor_id: Some(uuid::Uuid::from_u128(7)),
                action: "PATIENT_READ".into(),
                entity_type: "PATIENT".into(),
                entity_id: Some(uuid::Uuid::from_u128(9)),
                request_id: Some("req-1".into()),
                entity_ids: vec![uuid::Uuid::from_u128(9)],
            },
            tx: 1000 + id,
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            horizon: 2000,
            now: DateTime::from_timestamp(1_800_000_100, 0).unwrap_or_default(),
        }
    }

    #[test]
    fn every_column_is_in_the_digest() {
        let base = event(1);
        let same = digest(&base);
        let changes: Vec<fn(&mut SealedEventRow)> = vec![
            |e| e.event.id += 1,
            |e| e.event.at += chrono::Duration::microseconds(1),
            |e| e.event.actor_id = None,
            |e| e.event.action = "PATIENTS_READ".into(),
            |e| e.event.entity_type = "DOCTOR".into(),
            |e| e.event.entity_id = None,
            |e| e.event.request_id = Some("req-2".into()),
            |e| e.event.request_id = None,
            |e| e.event.entity_ids.push(uuid::Uuid::from_u128(10)),
            |e| e.tx += 1,
        ];
        for change in changes {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(digest(&changed), same, "{changed:?}");
        }
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        let mut a = event(1);
        let mut b = event(1);
        a.event.action = "PATIENT_READ".into();
        a.event.entity_type = "XPATIENT".into();
        b.event.action = "PATIENT_READX".into();
        b.event.entity_type = "PATIENT".into();
        assert_ne!(digest(&a), digest(&b));
    }

    #[test]
    fn a_block_depends_on_the_key_its_events_and_its_predecessor() {
        let events = [event(1), event(2)];
        let first = next_block(&key("k1"), None, snapshot(), &events, true);
        assert_eq!((first.number, first.sealed_total, first.newest_tx), (1, 2, 1002));
        assert_eq!((first.last_event, first.complete), (2, true));
        assert_eq!(first.event_ids, vec![1, 2]);
        assert_ne!(first.hash, next_block(&key("k2"), None, snapshot(), &events, true).hash);
        assert_ne!(
            first.hash,
            next_block(&key("k1"), None, snapshot(), &events[..1], true).hash
        );
        let head = HeadRow {
            number: first.number,
            sealed_at: first.sealed_at,
            horizon: first.horizon,
            last_event: first.last_event,
            complete: first.complete,
            sealed_total: first.sealed_total,
            hash: first.hash.clone(),
        };
        let second = next_block(&key("k1"), Some(&head), snapshot(), &[event(3)], true);
        assert_eq!((second.number, second.sealed_total), (2, 3));
        assert!(
            block_mac(&key("k1"), &as_hash(&first.hash), &second)
                .verify_slice(&second.hash)
                .is_ok()
        );
        assert!(
            block_mac(&key("k1"), &GENESIS, &second)
                .verify_slice(&second.hash)
                .is_err()
        );
    }

    #[test]
    fn the_horizon_never_goes_back() {
        let head = HeadRow {
            number: 4,
            sealed_at: snapshot().now,
            horizon: 5000,
            last_event: 10,
            complete: true,
            sealed_total: 10,
            hash: vec![1; 32],
        };
        assert_eq!(
            next_block(&key("k"), Some(&head), snapshot(), &[event(1)], true).horizon,
            5000
        );
        // A block that leaves events for the next one keeps the horizon.
        let low = HeadRow { horizon: 10, ..head };
        assert_eq!(
            next_block(&key("k"), Some(&low), snapshot(), &[event(1)], false).horizon,
            10
        );
        assert_eq!(
            next_block(&key("k"), Some(&low), snapshot(), &[event(1)], true).horizon,
            2000
        );
    }
}
