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

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use super::super::guard::Guard;
use super::identity::Binding;
use super::record::{CardId, CardRecord, Seal, StoreId};
use super::rules::{self, Attempt, PinOutcome, Verdict};
use super::{CounterError, CounterMetrics, CounterStore, Decided, Decision, Request, Snapshot};

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

impl Core {
    fn open_record(&self, card: &CardId, sealed: &[u8]) -> CardRecord {
        match self.seal.open(self.id, card, sealed) {
            Some(r) => r,
            None => {
                self.metrics.mac_failures.inc();
                tracing::error!(
                    "a counter store record failed its MAC (edited, or moved from another card or store); the card is treated as locked until its tries are reset"
                );
                CardRecord::tampered()
            }
        }
    }

    async fn read(&self, card: CardId) -> Result<CardRecord, CounterError> {
        let row: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT record FROM cofre_counter_cards WHERE card = $1")
                .bind(&card.as_bytes()[..])
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(row.map_or_else(CardRecord::default, |r| self.open_record(&card, &r)))
    }

    /// Decides and records `batch` in one transaction; `None` when an insert race was
    /// lost (rolled back: decide again).
    async fn try_commit(
        &self,
        conn: &mut PgConnection,
        batch: &[Job],
    ) -> Result<Option<Vec<Decision>>, sqlx::Error> {
        let mut names: Vec<[u8; 32]> = batch.iter().map(|j| *j.request.card.as_bytes()).collect();
        names.sort_unstable();
        names.dedup();
        let mut tx = conn.begin().await?;
        let now = batch.first().map_or(0, |j| j.request.now);
        let minute = i64::try_from(now / 60).unwrap_or(i64::MAX);
        let others: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(failures), 0)::bigint FROM cofre_counter_guard \
             WHERE minute = $1 AND node <> $2",
        )
        .bind(minute)
        .bind(self.node)
        .fetch_one(&mut *tx)
        .await?;
        if self
            .guard
            .observe_others(now, u64::try_from(others).unwrap_or(0))
        {
            tracing::error!("brute-force guard tripped: PIN failures per minute over the limit");
        }
        let keys: Vec<Vec<u8>> = names.iter().map(|n| n.to_vec()).collect();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT card, record FROM cofre_counter_cards WHERE card = ANY($1) \
             ORDER BY card FOR UPDATE",
        )
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await?;
        // Latest state per card, and whether it has a row.
        let mut state: HashMap<CardId, (CardRecord, bool)> = HashMap::with_capacity(rows.len());
        for (card, record) in rows {
            let Ok(name) = <[u8; 32]>::try_from(card.as_slice()) else {
                continue;
            };
            let card = CardId::from_bytes(name);
            state.insert(card, (self.open_record(&card, &record), true));
        }
        let mut changed: HashMap<CardId, CardRecord> = HashMap::new();
        let mut failures = 0i64;
        let decisions: Vec<Decision> = batch
            .iter()
            .map(|j| {
                let r = &j.request;
                let before = state.get(&r.card).map_or_else(CardRecord::default, |s| s.0);
                let d = rules::decide(
                    &before,
                    r.attempt,
                    r.limits,
                    r.attempt.is_pin_verification() && self.guard.refusing(),
                    r.now,
                );
                if r.attempt == Attempt::Pin(PinOutcome::Mismatched) && d.verdict == Verdict::Failed
                {
                    failures += 1;
                    if self.guard.record_failure(r.now) {
                        tracing::error!(
                            "brute-force guard tripped: PIN failures per minute over the limit"
                        );
                    }
                }
                if d.after != before {
                    let has_row = state.get(&r.card).is_some_and(|s| s.1);
                    state.insert(r.card, (d.after, has_row));
                    changed.insert(r.card, d.after);
                }
                d
            })
            .collect();
        let (mut new_cards, mut new_records) = (Vec::new(), Vec::new());
        let (mut old_cards, mut old_records) = (Vec::new(), Vec::new());
        for name in &names {
            let card = CardId::from_bytes(*name);
            let Some(record) = changed.get(&card) else {
                continue;
            };
            let sealed = self.seal.seal(self.id, &card, record).to_vec();
            if state.get(&card).is_some_and(|s| s.1) {
                old_cards.push(name.to_vec());
                old_records.push(sealed);
            } else {
                new_cards.push(name.to_vec());
                new_records.push(sealed);
            }
        }
        if !new_cards.is_empty() {
            let inserted = sqlx::query(
                "INSERT INTO cofre_counter_cards (card, record) \
                 SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (card) DO NOTHING",
            )
            .bind(&new_cards)
            .bind(&new_records)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if usize::try_from(inserted).ok() != Some(new_cards.len()) {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        if !old_cards.is_empty() {
            sqlx::query(
                "UPDATE cofre_counter_cards AS c SET record = u.record \
                 FROM unnest($1::bytea[], $2::bytea[]) AS u(card, record) WHERE c.card = u.card",
            )
            .bind(&old_cards)
            .bind(&old_records)
            .execute(&mut *tx)
            .await?;
        }
        if failures > 0 {
            sqlx::query(
                "INSERT INTO cofre_counter_guard (minute, node, failures) VALUES ($1, $2, $3) \
                 ON CONFLICT (minute, node) DO UPDATE \
                 SET failures = cofre_counter_guard.failures + EXCLUDED.failures",
            )
            .bind(minute)
            .bind(self.node)
            .bind(failures)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.metrics.commits.inc();
        self.metrics
            .changes
            .inc_by(u64::try_from(changed.len()).unwrap_or(0));
        Ok(Some(decisions))
    }

    async fn commit(
        &self,
        conn: &mut PgConnection,
        batch: &[Job],
    ) -> Result<Vec<Decision>, CounterError> {
        for _ in 0..RACE_RETRIES {
            match self.try_commit(conn, batch).await {
                Ok(Some(d)) => return Ok(d),
                Ok(None) => continue,
                Err(e) if is_race(&e) => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(unavailable(
            "the batch lost too many races with another daemon",
        ))
    }

    async fn connect(&self) -> Result<PgConnection, CounterError> {
        let mut conn = self.options.connect().await.map_err(unavailable)?;
        sqlx::query("SELECT 1")
            .execute(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(conn)
    }

    fn refuse(job: Job, why: &str) {
        let _ = job
            .reply
            .send(Err(CounterError::Unavailable(why.to_owned())));
    }

    async fn run_committer(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Job>) {
        let mut conn: Option<PgConnection> = None;
        let mut delay = RETRY_MIN;
        let mut last_minute = 0;
        loop {
            if self.broken.load(Ordering::Acquire) {
                tokio::select! {
                    job = rx.recv() => match job {
                        Some(job) => Self::refuse(job, "the counter store is unreachable"),
                        None => return,
                    },
                    () = tokio::time::sleep(delay) => match self.connect().await {
                        Ok(c) => {
                            conn = Some(c);
                            delay = RETRY_MIN;
                            self.broken.store(false, Ordering::Release);
                            tracing::warn!("counter store reachable again; verification resumes");
                        }
                        Err(_) => delay = (delay * 2).min(RETRY_MAX),
                    },
                }
                continue;
            }
            let Some(first) = rx.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let result = tokio::time::timeout(TXN_TIMEOUT, async {
                if conn.is_none() {
                    conn = Some(self.connect().await?);
                }
                match conn.as_mut() {
                    Some(c) => self.commit(c, &batch).await,
                    None => Err(unavailable("no connection")),
                }
            })
            .await
            .unwrap_or_else(|_| Err(unavailable("the commit did not finish in time")));
            match result {
                Ok(decisions) => {
                    let now = batch.first().map_or(0, |j| j.request.now);
                    for (job, d) in batch.into_iter().zip(decisions) {
                        if d.locked_now {
                            self.metrics.lockouts.inc();
                        }
                        let _ = job.reply.send(Ok(d));
                    }
                    self.sweep_guard(&mut last_minute, now, conn.as_mut()).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "counter store commit failed; refusing verification until it is reachable");
                    self.broken.store(true, Ordering::Release);
                    conn = None;
                    let why = e.to_string();
                    for job in batch {
                        Self::refuse(job, &why);
                    }
                    while let Ok(job) = rx.try_recv() {
                        Self::refuse(job, &why);
                    }
                }
            }
        }
    }

    /// When the minute of the requests' clock changes, deletes guard rows older than an
    /// hour of it.
    async fn sweep_guard(&self, last: &mut u64, now: u64, conn: Option<&mut PgConnection>) {
        let minute = now / 60;
        if minute == *last {
            return;
        }
        *last = minute;
        if let Some(c) = conn {
            let _ = sqlx::query("DELETE FROM cofre_counter_guard WHERE minute < $1")
                .bind(i64::try_from(minute.saturating_sub(60)).unwrap_or(0))
                .execute(c)
                .await;
        }
    }
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
                .map_err(|e| open_err(e.to_string()))?;
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
