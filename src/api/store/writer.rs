//! The writer: one task owns the one write connection and commits the changes of many
//! concurrent calls in one durable transaction (group commit), then answers them.
//!
//! A job is an operation ([`Op`]) and, for a client call, its idempotency [`Claim`]. The
//! writer takes every job that is waiting (up to [`MAX_BATCH`]), opens one transaction,
//! and for each job opens a savepoint, runs the operation, and:
//!
//! * [`OpOutcome::Keep`]: inserts the claim with the sealed answer
//!   (`INSERT ... ON CONFLICT DO NOTHING`); if the key was already recorded (another
//!   facade on the same database got there first) the savepoint is rolled back, so the
//!   effects are undone, and the recorded answer is the job's result;
//! * [`OpOutcome::Undo`]: rolls the savepoint back (a refusal changes nothing) and records
//!   the claim with the refusal;
//! * [`OpOutcome::Fail`]: rolls the savepoint back and records nothing (a server error:
//!   a retry runs again).
//!
//! Then it commits and only then answers every job of the batch. So a call's claim, its
//! effects and its answer are durable together or not at all: after a crash (SIGKILL
//! anywhere) a retry either finds the answer and replays it, or finds nothing and runs
//! once. Nothing pending is written to the idempotency table: a call in progress is known
//! to the process running it (`409 request_in_progress` from its memory) and, on
//! PostgreSQL, by a marker with a lease in `calls_in_progress` (`store/in_progress.rs`),
//! which a crash leaves only until the lease ends. A daemon call made before the
//! operation (a PAN drawn, a PIN generated) is not a database effect: if the process dies
//! before the commit that PAN is simply never used; the retry draws another.

use std::sync::Arc;

use sqlx::{AnyConnection, Connection};
use tokio::sync::{mpsc, oneshot};

use super::cache::RecordCache;
use super::history::{AppendOnly, AppendOp};
use super::key_filter::KeyFilter;
use super::{BoxFuture, Dialect, StoreError, db, idempotency, now_ms};

/// Most jobs in one transaction.
pub const MAX_BATCH: usize = 512;
/// Jobs waiting for the writer before callers wait to enqueue.
const QUEUE: usize = 8192;

/// Seals and opens stored answers (they may carry a secret such as a dCVV2): the store
/// keeps only what [`AnswerSeal::seal`] returns.
pub trait AnswerSeal: Send + Sync + std::fmt::Debug {
    /// The sealed form of an answer body.
    fn seal(&self, clear: &[u8]) -> String;
    /// The answer body, or `None` if the sealed text does not verify.
    fn open(&self, sealed: &str) -> Option<Vec<u8>>;
}

/// An answer: HTTP status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body bytes (JSON).
    pub body: Vec<u8>,
}

/// What an operation decided.
#[derive(Debug)]
pub enum OpOutcome {
    /// Keep the effects, record the answer.
    Keep(Answer),
    /// Undo the effects, record the answer (a refusal).
    Undo(Answer),
    /// Undo the effects, record nothing (a server error).
    Fail(Answer),
}

/// An operation inside the writer's transaction.
pub type Op = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, OpOutcome> + Send>;

/// A call's idempotency claim: its key and the fingerprint of what was asked.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The API client.
    pub client_id: String,
    /// `r:<X-Client-Request-Id>`: every call claims its (signed) request id.
    pub key: String,
    /// `k:<Idempotency-Key>`, when the call names one: claimed beside the request id, so
    /// a retry under a new request id finds the first answer, and a replayed request id
    /// finds its own whatever key it now carries.
    pub alias: Option<String>,
    /// SHA-256 hex of method, path, parameters, query and body.
    pub fingerprint: String,
    /// Whether the answer body is kept for a replay (a read's is not).
    pub keep_body: bool,
}

/// What a committed job answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// The job's own answer, durable (or, for a `Fail`, not recorded).
    Answer(Answer),
    /// The key was recorded before, for the same request: that answer.
    Replay(Answer),
    /// The key was recorded before, for another request.
    Mismatch,
}

enum Job {
    Call {
        claim: Claim,
        op: Op,
        /// `false` for an [`AppendOp`]: its batch keeps the read cache.
        changes_records: bool,
        done: oneshot::Sender<Result<Committed, StoreError>>,
    },
    /// A call that changed nothing: only its claim and answer are recorded (many in one
    /// multi-row statement).
    Record {
        claim: Claim,
        outcome: OpOutcome,
        done: oneshot::Sender<Result<Committed, StoreError>>,
    },
    Plain {
        op: PlainOp,
    },
    Close(oneshot::Sender<()>),
}

type PlainOp = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Release> + Send>;

/// Opens a fresh write connection (after a failed commit the old one's transaction
/// state cannot be trusted: it is dropped and replaced).
pub type Reconnect =
    Arc<dyn Fn() -> BoxFuture<'static, Result<AnyConnection, StoreError>> + Send + Sync>;

/// The handle to the writer task.
#[derive(Debug, Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Job {
    /// Whether the job may change records (and so invalidates the read cache).
    fn may_change_records(&self) -> bool {
        match self {
            Job::Call {
                changes_records, ..
            } => *changes_records,
            Job::Plain { .. } => true,
            Job::Record { .. } | Job::Close(_) => false,
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Writer {
    /// Starts the writer task on `conn`; `cache` is told of every transaction that may
    /// change records.
    pub fn start(
        conn: AnyConnection,
        dialect: Dialect,
        seal: Arc<dyn AnswerSeal>,
        cache: Option<Arc<RecordCache>>,
        keys: Option<Arc<KeyFilter>>,
        reconnect: Reconnect,
    ) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(conn, dialect, seal, cache, keys, reconnect, rx));
        Self { jobs }
    }

    /// Records the claim and answer of a call that changed nothing; answers once the
    /// batch committed.
    pub async fn record(&self, claim: Claim, outcome: OpOutcome) -> Result<Committed, StoreError> {
        if claim.alias.is_some() {
            // Two rows to claim together: the one-insert-per-call path.
            let op: Op = Box::new(move |_| Box::pin(async move { outcome }));
            return self.call(claim, op).await;
        }
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job::Record {
                claim,
                outcome,
                done,
            })
            .await
            .map_err(|_| StoreError::Database("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Database("the writer dropped a call".into()))?
    }

    /// Runs a call's operation under its claim; answers once the batch committed.
    pub async fn call(&self, claim: Claim, op: Op) -> Result<Committed, StoreError> {
        self.send_call(claim, op, true).await
    }

    /// [`Writer::call`] for an operation that only appends rows (history, occurrences):
    /// it gets no connection, only [`AppendOnly`], so it cannot change a card or an
    /// account, and a batch of such calls keeps the read cache (a refused PIN validation
    /// records its refusal without emptying the cache that every validation reads).
    pub async fn call_appending(
        &self,
        claim: Claim,
        op: AppendOp,
    ) -> Result<Committed, StoreError> {
        let op: Op = Box::new(move |db: &mut AnyConnection| op(AppendOnly(db)));
        self.send_call(claim, op, false).await
    }

    async fn send_call(
        &self,
        claim: Claim,
        op: Op,
        changes_records: bool,
    ) -> Result<Committed, StoreError> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job::Call {
                claim,
                op,
                changes_records,
                done,
            })
            .await
            .map_err(|_| StoreError::Database("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Database("the writer dropped a call".into()))?
    }

    /// Runs `op` in the next transaction and answers its result once committed (an
    /// error rolls its savepoint back).
    pub async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, StoreError>>();
        let plain: PlainOp = Box::new(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                let result = match conn.begin().await {
                    Ok(mut sp) => match op(&mut sp).await {
                        Ok(v) => sp.commit().await.map(|()| v).map_err(db),
                        Err(e) => {
                            let _ = sp.rollback().await;
                            Err(e)
                        }
                    },
                    Err(e) => Err(db(e)),
                };
                // Answered once the batch's commit is known.
                let release: Release = Box::new(move |ok: bool| {
                    let _ = tx.send(if ok {
                        result
                    } else {
                        Err(StoreError::Database(
                            "the transaction did not commit".into(),
                        ))
                    });
                });
                release
            })
        });
        self.jobs
            .send(Job::Plain { op: plain })
            .await
            .map_err(|_| StoreError::Database("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Database("the writer dropped a write".into()))?
    }

    /// Waits for the queued jobs, then stops the writer.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

type Release = Box<dyn FnOnce(bool) + Send>;

async fn run(
    mut conn: AnyConnection,
    dialect: Dialect,
    seal: Arc<dyn AnswerSeal>,
    cache: Option<Arc<RecordCache>>,
    keys: Option<Arc<KeyFilter>>,
    reconnect: Reconnect,
    mut rx: mpsc::Receiver<Job>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // After a failed begin or commit the connection's transaction state cannot be
    // trusted: the next batch starts on a new connection.
    let mut broken = false;
    loop {
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        if broken {
            (conn, broken) = fresh_connection(&reconnect, conn).await;
        }
        let changes = batch.iter().any(Job::may_change_records);
        if changes && let Some(c) = &cache {
            c.begin_write();
        }
        let mut close = None;
        let mut calls = Vec::with_capacity(batch.len());
        let mut records = Vec::new();
        let mut releases: Vec<Release> = Vec::new();
        let began = conn.begin().await;
        let mut tx = match began {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, "writer: cannot begin a transaction");
                fail_all(batch.drain(..), &e.to_string());
                if changes && let Some(c) = &cache {
                    c.end_write();
                }
                broken = true;
                continue;
            }
        };
        for job in batch.drain(..) {
            match job {
                Job::Call {
                    claim, op, done, ..
                } => {
                    let keys = claim_keys(&claim);
                    let result = run_call(&mut tx, dialect, seal.as_ref(), claim, op).await;
                    calls.push((done, result, keys));
                }
                Job::Record {
                    claim,
                    outcome,
                    done,
                } => records.push((claim, outcome, done)),
                Job::Plain { op } => releases.push(op(&mut tx).await),
                Job::Close(tx) => close = Some(tx),
            }
        }
        let recorded = record_all(&mut tx, dialect, seal.as_ref(), records).await;
        calls.extend(recorded.into_iter().map(|(d, r, k)| (d, r, vec![k])));
        let committed = tx.commit().await;
        if let Err(e) = &committed {
            tracing::error!(error = %e, "writer: commit failed; the batch is answered 500");
            broken = true;
        }
        if changes && let Some(c) = &cache {
            c.end_write();
        }
        let ok = committed.is_ok();
        if ok && let Some(filter) = &keys {
            // Every key the batch recorded (or found recorded), before any answer.
            for (_, result, keys) in &calls {
                if let Ok(Committed::Answer(_) | Committed::Replay(_) | Committed::Mismatch) =
                    result
                {
                    for (c, k) in keys.iter().filter(|(c, _)| !c.is_empty()) {
                        filter.insert(c, k);
                    }
                }
            }
        }
        for (done, result, _) in calls {
            let _ = done.send(if ok {
                result
            } else {
                Err(StoreError::Database(
                    "the transaction did not commit".into(),
                ))
            });
        }
        for release in releases {
            release(ok);
        }
        if let Some(c) = close {
            let _ = c.send(());
            return;
        }
    }
}

/// The (client, key) pairs a claim records.
fn claim_keys(claim: &Claim) -> Vec<(String, String)> {
    std::iter::once(&claim.key)
        .chain(claim.alias.as_ref())
        .map(|k| (claim.client_id.clone(), k.clone()))
        .collect()
}

/// Where a job's result goes.
pub(super) type Done = oneshot::Sender<Result<Committed, StoreError>>;

/// Records the claims and answers of calls that changed nothing: one multi-row insert
/// per chunk; a key already recorded answers what is recorded.
async fn record_all(
    tx: &mut AnyConnection,
    dialect: Dialect,
    seal: &dyn AnswerSeal,
    records: Vec<(Claim, OpOutcome, Done)>,
) -> Vec<(Done, Result<Committed, StoreError>, (String, String))> {
    let mut out = Vec::with_capacity(records.len());
    let mut keep = Vec::with_capacity(records.len());
    for (claim, outcome, done) in records {
        match outcome {
            OpOutcome::Keep(a) | OpOutcome::Undo(a) => keep.push((claim, a, done)),
            // Not recorded: the key stays out of the filter (inserting it would only cost
            // a lookup, but keeps the filter exact where it can be).
            OpOutcome::Fail(a) => out.push((
                done,
                Ok(Committed::Answer(a)),
                (String::new(), String::new()),
            )),
        }
    }
    let now = now_ms();
    let mut rest = keep.into_iter().peekable();
    while rest.peek().is_some() {
        let chunk: Vec<(Claim, Answer, Done)> = rest.by_ref().take(RECORD_CHUNK).collect();
        let sealed: Vec<String> = chunk
            .iter()
            .map(|(c, a, _)| seal.seal(if c.keep_body { &a.body } else { b"" }))
            .collect();
        let inserted = idempotency::insert_many(tx, &chunk, &sealed, now).await;
        for (i, (claim, answer, done)) in chunk.into_iter().enumerate() {
            let result = match &inserted {
                Ok(set) if set.contains(&i) => Ok(Committed::Answer(answer)),
                Ok(_) => idempotency::recorded(tx, dialect, seal, &claim).await,
                Err(e) => Err(StoreError::Database(e.to_string())),
            };
            out.push((done, result, (claim.client_id, claim.key)));
        }
    }
    out
}

/// Rows per multi-row idempotency insert (6 parameters a row).
const RECORD_CHUNK: usize = 128;

/// A new write connection in place of `old`, and whether it is still broken (`old` is
/// kept if none can be opened now: the next batch tries again).
async fn fresh_connection(reconnect: &Reconnect, old: AnyConnection) -> (AnyConnection, bool) {
    match reconnect().await {
        Ok(fresh) => {
            drop(old);
            tracing::warn!("writer: write connection replaced after a failed transaction");
            (fresh, false)
        }
        Err(e) => {
            tracing::error!(error = %e, "writer: cannot open a new write connection");
            (old, true)
        }
    }
}

fn fail_all(jobs: impl Iterator<Item = Job>, why: &str) {
    for job in jobs {
        match job {
            Job::Call { done, .. } => {
                let _ = done.send(Err(StoreError::Database(why.to_owned())));
            }
            Job::Record { done, .. } => {
                let _ = done.send(Err(StoreError::Database(why.to_owned())));
            }
            Job::Plain { .. } => {}
            Job::Close(c) => {
                let _ = c.send(());
            }
        }
    }
}

async fn run_call(
    tx: &mut AnyConnection,
    dialect: Dialect,
    seal: &dyn AnswerSeal,
    claim: Claim,
    op: Op,
) -> Result<Committed, StoreError> {
    let mut sp = tx.begin().await.map_err(db)?;
    let outcome = op(&mut sp).await;
    let now = now_ms();
    match outcome {
        OpOutcome::Keep(answer) => {
            let sealed = seal.seal(if claim.keep_body { &answer.body } else { b"" });
            if idempotency::insert(&mut sp, &claim, answer.status, &sealed, now).await? {
                sp.commit().await.map_err(db)?;
                Ok(Committed::Answer(answer))
            } else {
                sp.rollback().await.map_err(db)?;
                idempotency::recorded(tx, dialect, seal, &claim).await
            }
        }
        OpOutcome::Undo(answer) => {
            sp.rollback().await.map_err(db)?;
            let sealed = seal.seal(if claim.keep_body { &answer.body } else { b"" });
            // The claim's rows (request id and alias) go in together or not at all.
            let mut sp = tx.begin().await.map_err(db)?;
            if idempotency::insert(&mut sp, &claim, answer.status, &sealed, now).await? {
                sp.commit().await.map_err(db)?;
                Ok(Committed::Answer(answer))
            } else {
                sp.rollback().await.map_err(db)?;
                idempotency::recorded(tx, dialect, seal, &claim).await
            }
        }
        OpOutcome::Fail(answer) => {
            sp.rollback().await.map_err(db)?;
            Ok(Committed::Answer(answer))
        }
    }
}
