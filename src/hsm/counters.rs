//! The durable counter store: PIN try counters and dynamic CVV2 state per card, in an
//! embedded crash-safe database (redb) in the daemon's state directory.
//!
//! Cards are named by HMAC-SHA256 of the PAN under an LMK-derived key, never by the
//! PAN. Reads are plain read transactions. Every change goes through one committer
//! thread that takes all changes queued at that moment, applies them in order in one
//! write transaction and commits it durably (fsync) before any of their callers is
//! answered: group commit, so concurrent failures for many cards cost one sync, and
//! concurrent failures for one card are counted exactly (they are applied one after
//! another inside the committer).
//!
//! If a commit fails (a full disk, an I/O error) the store is marked unavailable and PIN
//! verification is refused until a probe write succeeds, so a broken disk never turns
//! into an uncounted guessing oracle.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::crypto::ClearKey;
use crate::crypto::mac::hmac_sha256;
use crate::crypto::pan::Pan;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const PIN: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pin_tries");
const DCVV2: TableDefinition<&[u8], &[u8]> = TableDefinition::new("dcvv2");
/// The store layout this code reads and writes.
pub const FORMAT: u64 = 1;

/// A card's name in the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardId([u8; 32]);

impl std::fmt::Debug for CardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardId({}..)", hex::encode(&self.0[..4]))
    }
}

impl CardId {
    /// HMAC-SHA256(key, "cofre/card/v1:" || PAN).
    pub fn new(key: &ClearKey, pan: &Pan) -> Self {
        let mut data = b"cofre/card/v1:".to_vec();
        data.extend_from_slice(pan.digits().as_bytes());
        Self(hmac_sha256(key.expose_secret(), &data))
    }
}

/// Tries of one kind (PIN or dCVV2) for one card.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tries {
    /// Failures since the last success or reset.
    pub failures: u32,
    /// Unix seconds of the last failure (0: none).
    pub last_failure: u64,
    /// Locked: verification answers `pin_locked` without looking.
    pub locked: bool,
}

impl Tries {
    fn encode(&self) -> [u8; 13] {
        let mut b = [0u8; 13];
        b[..4].copy_from_slice(&self.failures.to_be_bytes());
        b[4..12].copy_from_slice(&self.last_failure.to_be_bytes());
        b[12] = u8::from(self.locked);
        b
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; 13] = b.get(..13)?.try_into().ok()?;
        Some(Self {
            failures: u32::from_be_bytes(b[..4].try_into().ok()?),
            last_failure: u64::from_be_bytes(b[4..12].try_into().ok()?),
            locked: b[12] == 1,
        })
    }
}

/// A card's dynamic CVV2 state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dcvv2State {
    /// Whether dCVV2 is on (static CVV2 then fails).
    pub enabled: bool,
    /// dCVV2 tries.
    pub tries: Tries,
    /// The highest moving factor already accepted (codes at or below it are replays).
    pub last_used: Option<u64>,
}

impl Dcvv2State {
    fn encode(&self) -> [u8; 23] {
        let mut b = [0u8; 23];
        b[0] = u8::from(self.enabled);
        b[1..14].copy_from_slice(&self.tries.encode());
        b[14] = u8::from(self.last_used.is_some());
        b[15..23].copy_from_slice(&self.last_used.unwrap_or(0).to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; 23] = b.get(..23)?.try_into().ok()?;
        Some(Self {
            enabled: b[0] == 1,
            tries: Tries::decode(&b[1..14])?,
            last_used: (b[14] == 1)
                .then(|| u64::from_be_bytes(b[15..23].try_into().unwrap_or_default())),
        })
    }
}

/// A change, applied by the committer.
#[derive(Debug, Clone, Copy)]
pub enum Change {
    /// One more PIN failure; lock at `limit`.
    PinFailure { card: CardId, limit: u32, now: u64 },
    /// Clear the PIN tries.
    PinReset { card: CardId },
    /// One more dCVV2 failure; lock at `limit`.
    Dcvv2Failure { card: CardId, limit: u32, now: u64 },
    /// Accept a dCVV2 at `factor` unless a factor at or above it was already used.
    Dcvv2Use { card: CardId, factor: u64 },
    /// Turn dCVV2 on or off (turning it on clears its tries).
    Dcvv2Enable { card: CardId, enabled: bool },
}

/// What a change left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// PIN tries after the change.
    Pin(Tries),
    /// dCVV2 state after the change; for `Dcvv2Use`, whether the use was accepted.
    Dcvv2(Dcvv2State, bool),
}

/// Why the store refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CounterError {
    /// Opening the store failed (message names the file and the cause).
    #[error("counter store {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A commit failed or the store is unavailable.
    #[error("counter store unavailable: {0}")]
    Unavailable(String),
}

type Reply = tokio::sync::oneshot::Sender<Result<Outcome, CounterError>>;

/// The store.
pub struct CounterStore {
    db: Arc<Database>,
    path: PathBuf,
    jobs: Option<std::sync::mpsc::Sender<(Change, Reply)>>,
    committer: Option<std::thread::JoinHandle<()>>,
    broken: Arc<AtomicBool>,
    stats: CommitStats,
}

/// How many durable transactions carried how many changes (group commit at work).
#[derive(Debug, Clone)]
pub struct CommitStats {
    /// Durable write transactions committed.
    pub commits: prometheus::IntCounter,
    /// Changes applied by them.
    pub changes: prometheus::IntCounter,
}

impl CommitStats {
    fn new() -> Result<Self, String> {
        let c = |name: &str, help: &str| {
            prometheus::IntCounter::new(name, help).map_err(|e| e.to_string())
        };
        Ok(Self {
            commits: c(
                "cofre_counter_commits_total",
                "Durable counter-store transactions",
            )?,
            changes: c(
                "cofre_counter_changes_total",
                "Counter changes (failures, resets, dCVV2 uses) those transactions carried",
            )?,
        })
    }
}

impl Drop for CounterStore {
    fn drop(&mut self) {
        // Closing the queue ends the committer after it has committed what it holds.
        self.jobs.take();
        if let Some(t) = self.committer.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for CounterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CounterStore({})", self.path.display())
    }
}

fn storage<E: std::fmt::Display>(e: E) -> CounterError {
    CounterError::Unavailable(e.to_string())
}

impl CounterStore {
    /// Opens (or creates) `dir/counters.redb`, checks its format version, and starts the
    /// committer thread.
    pub fn open(dir: &Path) -> Result<Self, CounterError> {
        let path = dir.join("counters.redb");
        let open_err = |reason: String| CounterError::Open {
            path: path.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let existed = path.exists();
        let db = open_guarded(&path).map_err(open_err)?;
        let txn = db.begin_write().map_err(|e| open_err(e.to_string()))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| open_err(e.to_string()))?;
            let format = meta
                .get("format")
                .map_err(|e| open_err(e.to_string()))?
                .map(|g| g.value());
            match format {
                Some(FORMAT) => {}
                None if !existed => {
                    meta.insert("format", FORMAT)
                        .map_err(|e| open_err(e.to_string()))?;
                }
                None => {
                    return Err(open_err(
                        "not a cofre counter store (no format record)".into(),
                    ));
                }
                Some(other) => {
                    return Err(open_err(format!(
                        "format {other} is not supported by this version (expects {FORMAT}); upgrade or restore"
                    )));
                }
            }
            txn.open_table(PIN).map_err(|e| open_err(e.to_string()))?;
            txn.open_table(DCVV2).map_err(|e| open_err(e.to_string()))?;
        }
        txn.commit().map_err(|e| open_err(e.to_string()))?;
        let db = Arc::new(db);
        let (tx, rx) = std::sync::mpsc::channel();
        let broken = Arc::new(AtomicBool::new(false));
        let stats = CommitStats::new().map_err(open_err)?;
        let (cdb, cbroken, cstats) = (Arc::clone(&db), Arc::clone(&broken), stats.clone());
        let handle = std::thread::Builder::new()
            .name("cofre-counters".into())
            .spawn(move || committer(&cdb, &rx, &cbroken, &cstats))
            .map_err(|e| open_err(e.to_string()))?;
        Ok(Self {
            db,
            path,
            jobs: Some(tx),
            committer: Some(handle),
            broken,
            stats,
        })
    }

    /// The commit counters (registered in the daemon's metrics).
    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    /// Whether the last commit failed (PIN verification must be refused).
    pub fn is_unavailable(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    /// A card's PIN tries (no disk write).
    pub fn pin(&self, card: &CardId) -> Result<Tries, CounterError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(PIN).map_err(storage)?;
        let v = table.get(&card.0[..]).map_err(storage)?;
        Ok(v.and_then(|g| Tries::decode(g.value())).unwrap_or_default())
    }

    /// A card's dCVV2 state (no disk write).
    pub fn dcvv2(&self, card: &CardId) -> Result<Dcvv2State, CounterError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(DCVV2).map_err(storage)?;
        let v = table.get(&card.0[..]).map_err(storage)?;
        Ok(v.and_then(|g| Dcvv2State::decode(g.value()))
            .unwrap_or_default())
    }

    /// Queues a change and waits until it is durable.
    pub async fn apply(&self, change: Change) -> Result<Outcome, CounterError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .as_ref()
            .ok_or_else(|| CounterError::Unavailable("committer stopped".into()))?
            .send((change, tx))
            .map_err(|_| CounterError::Unavailable("committer stopped".into()))?;
        rx.await
            .map_err(|_| CounterError::Unavailable("committer stopped".into()))?
    }
}

/// Opens the database. redb asserts on some damaged files (a file cut shorter than its
/// header says) instead of returning an error; such a panic is caught here and reported
/// as a damaged file, so a bad store is a clear startup error, never a crash.
fn open_guarded(path: &Path) -> Result<Database, String> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| Database::create(path));
    std::panic::set_hook(previous);
    match result {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => {
            Err("the file is damaged (truncated or overwritten); restore it from backup".into())
        }
    }
}

fn apply_one(txn: &redb::WriteTransaction, change: Change) -> Result<Outcome, redb::Error> {
    match change {
        Change::PinFailure { card, limit, now } => {
            let mut t = txn.open_table(PIN)?;
            let mut tries = t
                .get(&card.0[..])?
                .and_then(|g| Tries::decode(g.value()))
                .unwrap_or_default();
            tries.failures = tries.failures.saturating_add(1);
            tries.last_failure = now;
            tries.locked |= tries.failures >= limit;
            t.insert(&card.0[..], &tries.encode()[..])?;
            Ok(Outcome::Pin(tries))
        }
        Change::PinReset { card } => {
            txn.open_table(PIN)?.remove(&card.0[..])?;
            Ok(Outcome::Pin(Tries::default()))
        }
        Change::Dcvv2Failure { card, limit, now } => {
            let mut t = txn.open_table(DCVV2)?;
            let mut s = t
                .get(&card.0[..])?
                .and_then(|g| Dcvv2State::decode(g.value()))
                .unwrap_or_default();
            s.tries.failures = s.tries.failures.saturating_add(1);
            s.tries.last_failure = now;
            s.tries.locked |= s.tries.failures >= limit;
            t.insert(&card.0[..], &s.encode()[..])?;
            Ok(Outcome::Dcvv2(s, false))
        }
        Change::Dcvv2Use { card, factor } => {
            let mut t = txn.open_table(DCVV2)?;
            let mut s = t
                .get(&card.0[..])?
                .and_then(|g| Dcvv2State::decode(g.value()))
                .unwrap_or_default();
            let fresh = s.last_used.is_none_or(|u| factor > u);
            if fresh {
                s.last_used = Some(factor);
                s.tries = Tries::default();
                t.insert(&card.0[..], &s.encode()[..])?;
            }
            Ok(Outcome::Dcvv2(s, fresh))
        }
        Change::Dcvv2Enable { card, enabled } => {
            let mut t = txn.open_table(DCVV2)?;
            let mut s = t
                .get(&card.0[..])?
                .and_then(|g| Dcvv2State::decode(g.value()))
                .unwrap_or_default();
            s.enabled = enabled;
            if enabled {
                s.tries = Tries::default();
            }
            t.insert(&card.0[..], &s.encode()[..])?;
            Ok(Outcome::Dcvv2(s, true))
        }
    }
}

fn commit_batch(db: &Database, batch: &[(Change, Reply)]) -> Result<Vec<Outcome>, redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate).map_err(|e| {
        redb::Error::from(redb::StorageError::Io(std::io::Error::other(e.to_string())))
    })?;
    let outcomes = batch
        .iter()
        .map(|(c, _)| apply_one(&txn, *c))
        .collect::<Result<Vec<_>, _>>()?;
    txn.commit()?;
    Ok(outcomes)
}

fn probe(db: &Database) -> bool {
    let Ok(txn) = db.begin_write() else {
        return false;
    };
    let ok = txn
        .open_table(META)
        .and_then(|mut m| m.insert("probe", 0u64).map(|_| ()).map_err(Into::into))
        .is_ok();
    ok && txn.commit().is_ok()
}

fn committer(
    db: &Database,
    rx: &std::sync::mpsc::Receiver<(Change, Reply)>,
    broken: &AtomicBool,
    stats: &CommitStats,
) {
    loop {
        let first = if broken.load(Ordering::Acquire) {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(job) => Some(job),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(job) => Some(job),
                Err(_) => return,
            }
        };
        if broken.load(Ordering::Acquire) && probe(db) {
            broken.store(false, Ordering::Release);
            tracing::warn!("counter store writable again; PIN verification resumes");
        }
        let Some(first) = first else { continue };
        let mut batch = vec![first];
        while let Ok(job) = rx.try_recv() {
            batch.push(job);
            if batch.len() >= 4096 {
                break;
            }
        }
        match commit_batch(db, &batch) {
            Ok(outcomes) => {
                stats.commits.inc();
                stats.changes.inc_by(outcomes.len() as u64);
                for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                broken.store(true, Ordering::Release);
                tracing::error!(error = %e, "counter store commit failed; refusing PIN verification until it is writable");
                for (_, reply) in batch {
                    let _ = reply.send(Err(CounterError::Unavailable(e.to_string())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cofre-counters-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn card(n: u8) -> CardId {
        CardId([n; 32])
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exact_counts_lock_and_reset() {
        let d = dir("exact");
        let store = Arc::new(CounterStore::open(&d).unwrap());
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let s = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                s.apply(Change::PinFailure {
                    card: card(1),
                    limit: 1000,
                    now: 5,
                })
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.pin(&card(1)).unwrap().failures, 64);
        assert_eq!(store.pin(&card(2)).unwrap(), Tries::default());
        for i in 1..=3 {
            let Outcome::Pin(t) = store
                .apply(Change::PinFailure {
                    card: card(3),
                    limit: 3,
                    now: 9,
                })
                .await
                .unwrap()
            else {
                panic!()
            };
            assert_eq!(t.locked, i == 3);
        }
        store
            .apply(Change::PinReset { card: card(3) })
            .await
            .unwrap();
        assert!(!store.pin(&card(3)).unwrap().locked);
        // dCVV2: one use per factor, replays refused.
        let use_ = |f| Change::Dcvv2Use {
            card: card(4),
            factor: f,
        };
        assert_eq!(
            store.apply(use_(10)).await.unwrap(),
            Outcome::Dcvv2(
                Dcvv2State {
                    last_used: Some(10),
                    ..Default::default()
                },
                true
            )
        );
        assert!(matches!(
            store.apply(use_(10)).await.unwrap(),
            Outcome::Dcvv2(_, false)
        ));
        assert!(matches!(
            store.apply(use_(9)).await.unwrap(),
            Outcome::Dcvv2(_, false)
        ));
        assert!(matches!(
            store.apply(use_(11)).await.unwrap(),
            Outcome::Dcvv2(_, true)
        ));
        drop(store);
        // Reopen: durable.
        let store = CounterStore::open(&d).unwrap();
        assert_eq!(store.pin(&card(1)).unwrap().failures, 64);
        assert_eq!(store.dcvv2(&card(4)).unwrap().last_used, Some(11));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn damaged_or_foreign_files_are_clear_errors() {
        let d = dir("damaged");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("counters.redb"), b"not a database at all").unwrap();
        let e = CounterStore::open(&d).unwrap_err().to_string();
        assert!(e.contains("counters.redb"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
