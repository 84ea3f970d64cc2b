//! The counter store shared by a pair of daemons (or more): PostgreSQL.
//!
//! # Per-card ordering across daemons
//!
//! Each daemon queues its decisions, in arrival order, to one committer task. The
//! committer takes everything queued (up to [`MAX_BATCH`]) and, in **one transaction**:
//!
//! 1. reads the failures the other daemons counted in this minute (brute-force guard);
//! 2. `SELECT ... FOR UPDATE` the rows of every card in the batch, in the order of
//!    their names (a stable order: two daemons never deadlock on each other's rows);
//! 3. decides each request, in arrival order, with [`super::rules::decide`] against
//!    the locked (latest committed) state, each decision seeing the ones before it;
//! 4. inserts the rows of cards seen for the first time (`ON CONFLICT DO NOTHING`: if
//!    another daemon inserted one meanwhile, the transaction is rolled back and the
//!    batch decided again, now against that row) and updates the others, every record
//!    sealed with its MAC;
//! 5. adds this daemon's PIN failures to its guard row, and commits.
//!
//! The answers leave after the commit returns (PostgreSQL has made it durable, with
//! `synchronous_commit` on, which the daemon checks at start). A row lock is held from
//! step 2 to the commit, so a decision on another daemon about the same card waits for
//! this commit and then sees it: decisions about one card are serialised across the
//! pair, and within a daemon they keep arrival order. Cards with no row (never failed)
//! and whose decision changes nothing (the common success) cost no write.
//!
//! # Failures
//!
//! If the transaction fails or takes longer than [`TXN_TIMEOUT`], nothing of it is
//! durable: its answers, and everything queued behind it, are `store_unavailable`,
//! and verification is refused at once until a probe (a new connection and `SELECT 1`)
//! succeeds; probes back off from [`RETRY_MIN`] to [`RETRY_MAX`].
//!
//! # Reads
//!
//! Queries of a card's state (`pin.attempts`, `dcvv2.state`, static CVV2 while dCVV2 is
//! on) read the committed row. A verification is not refused early from a local copy
//! (another daemon may have reset the card): [`CounterStore::verification_hint`] is
//! `None`, the verification is computed, and the decision in the transaction answers
//! `pin_locked` for a locked card whatever the PIN block held.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use tokio::sync::{mpsc, oneshot};

use super::super::guard::Guard;
use super::identity::Binding;
use super::record::{CardId, Seal, StoreId};
use super::{CounterError, CounterMetrics, CounterStore, Decided, Decision, Request, Snapshot};

#[path = "postgres_committer.rs"]
mod committer;
#[path = "postgres_schema.rs"]
mod schema;

/// Requests one transaction carries at most.
const MAX_BATCH: usize = 4096;
/// A transaction that has not committed after this long is abandoned (unavailable).
const TXN_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection back-off, first and longest wait.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Times a batch is decided again after losing an insert race to another daemon.
const RACE_RETRIES: usize = 8;

/// Where the shared store is: a `postgres://` URL without a password, and the password
/// (from `counters_password_file` or the systemd credential), never printed.
#[derive(Clone)]
pub struct PgTarget {
    /// The URL (no password in it).
    pub url: String,
    /// The password, if any.
    pub password: Option<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgTarget({}, password: [REDACTED])", self.url)
    }
}

impl PgTarget {
    fn options(&self) -> Result<PgConnectOptions, CounterError> {
        let o = PgConnectOptions::from_str(&self.url).map_err(|e| CounterError::Open {
            path: "counters".into(),
            reason: e.to_string(),
        })?;
        let o = match &self.password {
            Some(p) => o.password(p),
            None => o,
        };
        Ok(o.application_name("cofre-hsm").disable_statement_logging())
    }
}

type Reply = oneshot::Sender<Result<Decision, CounterError>>;

struct Job {
    request: Request,
    reply: Reply,
}

struct Core {
    options: PgConnectOptions,
    pool: PgPool,
    seal: Seal,
    id: StoreId,
    /// This process's row in the guard table.
    node: i64,
    broken: AtomicBool,
    metrics: CounterMetrics,
    guard: Guard,
}

/// The shared store.
pub struct PgCounters {
    core: Arc<Core>,
    jobs: mpsc::UnboundedSender<Job>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for PgCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgCounters({})", self.core.id)
    }
}

impl Drop for PgCounters {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> CounterError {
    CounterError::Unavailable(e.to_string())
}

/// Whether a failed statement is worth deciding the batch again (deadlock, serialisation).
fn is_race(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}

impl PgCounters {
    /// Connects to the shared store, creates or upgrades its schema, checks its identity
    /// against the audit log's `binding` (creating it in an empty database, when
    /// `record` writes its audit line), and starts the committer.
    pub fn open(
        target: &PgTarget,
        seal: Seal,
        binding: Option<Binding>,
        now: u64,
        record: impl FnOnce(StoreId) -> Result<(), String>,
        metrics: CounterMetrics,
        guard: Guard,
    ) -> Result<Self, CounterError> {
        let options = target.options()?;
        let open_err = |reason: String| CounterError::Open {
            path: "counters (PostgreSQL)".into(),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cofre-counters")
            .enable_all()
            .build()
            .map_err(|e| open_err(e.to_string()))?;
        let (pool, id) = runtime.block_on(async {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(3))
                .connect_with(options.clone())
                .await
                .map_err(|e| {
                    // Not reachable (yet): a service manager may start the daemon again;
                    // anything else (a refused login, a bad URL) is the configuration's.
                    if matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut) {
                        unavailable(e)
                    } else {
                        open_err(e.to_string())
                    }
                })?;
            let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(&pool)
                .await
                .map_err(|e| open_err(e.to_string()))?;
            if sync == "off" {
                return Err(open_err(
                    "synchronous_commit is off for this role or database: a commit would not \
                     be durable when answered; set it to on (or stronger)"
                        .into(),
                ));
            }
            let mut tx = pool.begin().await.map_err(unavailable)?;
            schema::migrate(&mut tx).await?;
            let id = schema::identity(&mut tx, &seal, binding, now, record).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok::<_, CounterError>((pool, id))
        })?;
        let core = Arc::new(Core {
            options,
            pool,
            seal,
            id,
            node: rand::random::<i64>(),
            broken: AtomicBool::new(false),
            metrics,
            guard,
        });
        let (jobs, rx) = mpsc::unbounded_channel();
        runtime.spawn(Arc::clone(&core).run_committer(rx));
        Ok(Self {
            core,
            jobs,
            runtime: Some(runtime),
        })
    }

    /// The store's identity (as the audit log records it).
    pub fn id(&self) -> StoreId {
        self.core.id
    }

    /// Replaces the shared store by an empty one with a new identity; `record` writes
    /// the `counters-reset` audit line before the transaction commits. Refused while a
    /// daemon is connected.
    pub fn reset(
        target: &PgTarget,
        seal: &Seal,
        now: u64,
        record: impl FnOnce(StoreId) -> Result<(), String>,
    ) -> Result<StoreId, CounterError> {
        let options = target.options()?.application_name("cofre-keys");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(unavailable)?;
        runtime.block_on(async {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(unavailable)?;
            let mut tx = pool.begin().await.map_err(unavailable)?;
            let id = schema::reset(&mut tx, seal, now, record).await?;
            tx.commit().await.map_err(unavailable)?;
            pool.close().await;
            Ok(id)
        })
    }

    /// The whole reset as `cofre keys counters-reset --counters` does it: the key store
    /// and the audit chain are checked, the shared store is emptied with a new identity,
    /// and the reset is recorded (audit line by `who`, then the key store's new head).
    pub fn reset_recorded(
        target: &PgTarget,
        key_store: &std::path::Path,
        audit_log: &std::path::Path,
        lmk: &crate::keys::Lmk,
        who: &str,
    ) -> Result<StoreId, String> {
        use crate::keys::{KeyStore, audit};
        let mut store = KeyStore::load(key_store, lmk).map_err(|e| e.to_string())?;
        audit::verify(audit_log, lmk, store.audit_head()).map_err(|e| e.to_string())?;
        let seal = Seal::new(&lmk.derive(crate::keys::lmk::Purpose::CounterRecordMac))
            .ok_or("no counter MAC key")?;
        let now = std::time::SystemTime::now();
        let unix = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::reset(target, &seal, unix, |id| {
            let event = super::identity::audit_event(super::identity::RESET, who, id);
            let time = humantime::format_rfc3339_seconds(now).to_string();
            let head = audit::append(audit_log, lmk, event, time).map_err(|e| e.to_string())?;
            store.set_audit_head(head);
            store.save(key_store, lmk).map_err(|e| e.to_string())
        })
        .map_err(|e| e.to_string())
    }
}

impl CounterStore for PgCounters {
    fn snapshot(&self, card: &CardId) -> Result<Snapshot, CounterError> {
        let Some(rt) = self.runtime.as_ref() else {
            return Err(unavailable("the store is closed"));
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let core = Arc::clone(&self.core);
        let card = *card;
        rt.spawn(async move {
            let r = tokio::time::timeout(TXN_TIMEOUT, core.read(card))
                .await
                .unwrap_or_else(|_| Err(unavailable("the read did not finish in time")));
            let _ = tx.send(r);
        });
        let wait = || rx.recv().map_err(|_| unavailable("the store stopped"));
        // On the daemon's multi-thread runtime, its other tasks move to another thread
        // while this one waits.
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let record = if multi {
            tokio::task::block_in_place(wait)
        } else {
            wait()
        }??;
        Ok(Snapshot {
            card,
            record,
            version: 0,
        })
    }

    fn verification_hint(&self, _: &CardId) -> Result<Option<Snapshot>, CounterError> {
        Ok(None)
    }

    fn decide(&self, request: Request) -> Decided {
        if self.core.broken.load(Ordering::Acquire) {
            return Decided::Now(Err(unavailable(
                "the counter store is unreachable; nothing is decided until it is back",
            )));
        }
        let (reply, rx) = oneshot::channel();
        if self.jobs.send(Job { request, reply }).is_err() {
            return Decided::Now(Err(unavailable("the committer stopped")));
        }
        Decided::AfterCommit(rx)
    }

    fn is_unavailable(&self) -> bool {
        self.core.broken.load(Ordering::Acquire)
    }

    fn guard(&self) -> &Guard {
        &self.core.guard
    }
}

#[cfg(test)]
#[path = "postgres_tests.rs"]
mod tests;
