//! The counter store on one node: redb in the state directory, with the decided-but-
//! uncommitted state of each card in memory in front of it.
//!
//! Cards are spread over [`SHARDS`] mutex-guarded shards. Each shard knows which of its
//! cards have a committed record (read once at start, then kept by the committer), so
//! the common card, with no record, costs no read at all. A decision locks its card's
//! shard, takes the card's pending state if it has one (else the committed record, or
//! the snapshot the operation read if nothing in the shard changed since), applies
//! [`rules::decide`], records the new state as pending and queues the change, all under
//! that lock: so decisions about one card are serialised in arrival order and each sees
//! every earlier one. One committer thread ([`committer`]) takes everything queued,
//! writes it in one durable transaction (fsync), drops the pending states that
//! transaction made durable, and only then releases the answers.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, ReadableDatabase, ReadableTable};
use tokio::sync::oneshot;

use super::super::guard::Guard;
use super::identity::{self, Binding};
use super::record::{CardId, CardRecord, Seal, StoreId};
use super::rules::{self, Attempt, PinOutcome, Verdict};
use super::{
    CounterError, CounterMetrics, CounterStore, Decided, Decision, RECORDS, Request, Snapshot,
};

/// Shards of the pending map (a power of two well above the number of cores).
const SHARDS: usize = 256;
/// Changes one transaction carries at most.
const MAX_BATCH: usize = 4096;

type Reply = oneshot::Sender<Result<Decision, CounterError>>;

/// A decided change (or a decision waiting on one) for the committer.
struct Job {
    card: CardId,
    /// The state to write; `None` when the decision changed nothing but must wait for
    /// the commit of an earlier change to the card.
    write: Option<CardRecord>,
    /// The pending state's sequence number (0 when `write` is `None`).
    seq: u64,
    decision: Decision,
    reply: Reply,
}

#[derive(Default)]
struct Shard {
    /// Bumped whenever a card of the shard gets a new latest state.
    version: u64,
    /// Cards with decided changes not yet durable: latest state and its sequence number.
    pending: HashMap<CardId, (CardRecord, u64)>,
    /// Cards with a committed record (any other card's committed state is the default).
    recorded: HashSet<CardId>,
}

/// What the decisions and the committer share.
struct Core {
    db: Arc<Database>,
    seal: Seal,
    id: StoreId,
    shards: Box<[Mutex<Shard>]>,
    broken: AtomicBool,
    seq: AtomicU64,
    metrics: CounterMetrics,
    guard: Guard,
}

/// The store.
pub struct RedbCounters {
    core: Arc<Core>,
    path: PathBuf,
    jobs: Option<Sender<Job>>,
    committer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for RedbCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedbCounters({}, {})", self.path.display(), self.core.id)
    }
}

impl Drop for RedbCounters {
    fn drop(&mut self) {
        // Closing the queue ends the committer after it has committed what it holds.
        self.jobs.take();
        if let Some(t) = self.committer.take() {
            let _ = t.join();
        }
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    match shard.lock() {
        Ok(g) => g,
        // A panic while holding a shard cannot leave it half-written: every change to
        // it is a single insert or remove.
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn storage<E: std::fmt::Display>(e: E) -> CounterError {
    CounterError::Unavailable(e.to_string())
}

impl Core {
    /// The core of an open store; reads which cards have a record.
    fn new(
        db: Database,
        id: StoreId,
        seal: Seal,
        metrics: CounterMetrics,
        guard: Guard,
    ) -> Result<Self, CounterError> {
        let shards: Box<[Mutex<Shard>]> = (0..SHARDS).map(|_| Mutex::default()).collect();
        {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(RECORDS).map_err(storage)?;
            for entry in table.iter().map_err(storage)? {
                let (key, _) = entry.map_err(storage)?;
                // A key that is not a card name is no card's record: ignored.
                if let Ok(name) = <[u8; 32]>::try_from(key.value()) {
                    let card = CardId::from_bytes(name);
                    lock(&shards[card.shard(SHARDS)]).recorded.insert(card);
                }
            }
        }
        Ok(Self {
            db: Arc::new(db),
            seal,
            id,
            shards,
            broken: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            metrics,
            guard,
        })
    }

    /// The latest state of `card`, its shard locked: pending, else committed.
    fn latest(&self, shard: &Shard, card: &CardId) -> Result<CardRecord, CounterError> {
        match shard.pending.get(card) {
            Some((rec, _)) => Ok(*rec),
            None if shard.recorded.contains(card) => self.committed(card),
            None => Ok(CardRecord::default()),
        }
    }

    fn shard(&self, card: &CardId) -> &Mutex<Shard> {
        &self.shards[card.shard(self.shards.len())]
    }

    /// The committed record of a card (no pending state), its MAC checked.
    fn committed(&self, card: &CardId) -> Result<CardRecord, CounterError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(RECORDS).map_err(storage)?;
        let Some(value) = table.get(&card.as_bytes()[..]).map_err(storage)? else {
            return Ok(CardRecord::default());
        };
        Ok(match self.seal.open(self.id, card, value.value()) {
            Some(r) => r,
            None => {
                self.metrics.mac_failures.inc();
                tracing::error!(
                    "a counter store record failed its MAC (edited, or moved from another card or store); the card is treated as locked until its tries are reset"
                );
                CardRecord::tampered()
            }
        })
    }

    /// Decides under the card's shard lock and queues what must be committed.
    fn decide(&self, r: Request, jobs: Option<&Sender<Job>>) -> Decided {
        let Some(jobs) = jobs else {
            return Decided::Now(Err(CounterError::Unavailable(
                "the committer stopped".into(),
            )));
        };
        let mut shard = lock(self.shard(&r.card));
        if self.broken.load(Ordering::Acquire) {
            return Decided::Now(Err(CounterError::Unavailable(
                "the last commit failed; nothing is decided until the store is writable".into(),
            )));
        }
        let pending = shard.pending.get(&r.card).map(|(rec, _)| *rec);
        let before = match (pending, r.seen) {
            (Some(rec), _) => rec,
            (None, Some(s)) if s.card == r.card && s.version == shard.version => s.record,
            (None, _) => match self.latest(&shard, &r.card) {
                Ok(rec) => rec,
                Err(e) => return Decided::Now(Err(e)),
            },
        };
        let decision = rules::decide(
            &before,
            r.attempt,
            r.limits,
            r.attempt.is_pin_verification() && self.guard.refusing(),
            r.now,
        );
        if r.attempt == Attempt::Pin(PinOutcome::Mismatched)
            && decision.verdict == Verdict::Failed
            && self.guard.record_failure(r.now)
        {
            tracing::error!("brute-force guard tripped: PIN failures per minute over the limit");
        }
        let changed = decision.after != before;
        if !changed && pending.is_none() {
            return Decided::Now(Ok(decision));
        }
        let seq = if changed {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
            shard.version += 1;
            shard.pending.insert(r.card, (decision.after, seq));
            seq
        } else {
            0
        };
        let (reply, rx) = oneshot::channel();
        let job = Job {
            card: r.card,
            write: changed.then_some(decision.after),
            seq,
            decision,
            reply,
        };
        // Queued under the shard lock: the queue holds each card's changes in the order
        // they were decided.
        if jobs.send(job).is_err() {
            if changed {
                shard.pending.remove(&r.card);
            }
            return Decided::Now(Err(CounterError::Unavailable(
                "the committer stopped".into(),
            )));
        }
        Decided::AfterCommit(rx)
    }
}

impl RedbCounters {
    /// Opens the store in `dir`, checked against the audit log's `binding` (creating it
    /// on a first start, when `record` writes its audit line), and starts the committer.
    pub fn open(
        dir: &Path,
        seal: Seal,
        binding: Option<Binding>,
        now: u64,
        record: impl FnOnce(StoreId) -> Result<(), String>,
        metrics: CounterMetrics,
        guard: Guard,
    ) -> Result<Self, CounterError> {
        let (db, id) = identity::open_bound(dir, &seal, binding, now, record)?;
        let path = dir.join(identity::FILE);
        let core = Arc::new(Core::new(db, id, seal, metrics, guard)?);
        let (tx, rx) = std::sync::mpsc::channel();
        let c = Arc::clone(&core);
        let committer = std::thread::Builder::new()
            .name("cofre-counters".into())
            .spawn(move || c.run_committer(&rx))
            .map_err(|e| CounterError::Open {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            core,
            path,
            jobs: Some(tx),
            committer: Some(committer),
        })
    }

    /// The store's identity (as the audit log records it).
    pub fn id(&self) -> StoreId {
        self.core.id
    }
}

impl CounterStore for RedbCounters {
    fn snapshot(&self, card: &CardId) -> Result<Snapshot, CounterError> {
        let shard = lock(self.core.shard(card));
        let record = self.core.latest(&shard, card)?;
        Ok(Snapshot {
            card: *card,
            record,
            version: shard.version,
        })
    }

    fn decide(&self, request: Request) -> Decided {
        self.core.decide(request, self.jobs.as_ref())
    }

    fn is_unavailable(&self) -> bool {
        self.core.broken.load(Ordering::Acquire)
    }

    fn guard(&self) -> &Guard {
        &self.core.guard
    }
}

#[path = "committer.rs"]
mod committer;

#[cfg(test)]
#[path = "embedded_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "committer_tests.rs"]
mod committer_tests;

#[cfg(test)]
#[path = "redb_store_tests.rs"]
mod redb_store_tests;
