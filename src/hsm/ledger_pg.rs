//! The shared key ledger in PostgreSQL: one row of `cofre_key_ledger` holding the
//! generation, the key store document and the audit log, in the database of the shared
//! counter store. A change reads the row `FOR UPDATE`, appends to the chain it holds and
//! writes generation + 1 in the same transaction, so two daemons changing keys at once
//! are serialised by the row lock: the second sees the first's generation and appends
//! after it (one linear chain). The pure checks are in [`super::ledger`].

use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use super::ledger::{self, LedgerError, Snapshot, Start};
use crate::keys::Lmk;
use crate::keys::audit::AuditHead;

/// Every round trip (a change included) is given up after this long.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Serialises the creation of the table by two daemons starting at once.
const SCHEMA_LOCK: i64 = 0x636f_6672_654b_4c44;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS cofre_key_ledger (
    id smallint PRIMARY KEY CHECK (id = 1),
    generation bigint NOT NULL,
    document text NOT NULL,
    audit text NOT NULL)";
const READ: &str = "SELECT generation, document, audit FROM cofre_key_ledger WHERE id = 1";
const LOCK: &str =
    "SELECT generation, document, audit FROM cofre_key_ledger WHERE id = 1 FOR UPDATE";
const WRITE: &str = "INSERT INTO cofre_key_ledger (id, generation, document, audit)
    VALUES (1, $1, $2, $3)
    ON CONFLICT (id) DO UPDATE SET generation = $1, document = $2, audit = $3";

struct Inner {
    runtime: tokio::runtime::Runtime,
    options: PgConnectOptions,
    conn: Option<PgConnection>,
    /// The generation this daemon holds.
    generation: i64,
    /// A generation found bad (logged once, not adopted).
    refused: Option<i64>,
    /// Whether the last poll could not reach the database (logged once per outage).
    unreachable: bool,
}

/// The ledger, used from blocking threads only (key administration, the poller).
pub struct PgLedger {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for PgLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgLedger")
    }
}

fn unavailable(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(e.to_string())
}

fn refused(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Refused(e.to_string())
}

type Row = (i64, String, String);

/// Runs one round trip within [`TIMEOUT`].
fn within<T, F>(runtime: &tokio::runtime::Runtime, f: F) -> Result<T, LedgerError>
where
    F: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    runtime.block_on(async {
        match tokio::time::timeout(TIMEOUT, f).await {
            Ok(r) => r.map_err(unavailable),
            Err(_) => Err(unavailable("no answer within 5 s")),
        }
    })
}

impl PgLedger {
    /// Connects and creates the table if needed. `url` has no password.
    pub fn open(url: &str, password: Option<&str>) -> Result<Self, LedgerError> {
        let options = PgConnectOptions::from_str(url).map_err(unavailable)?;
        let options = match password {
            Some(p) => options.password(p),
            None => options,
        };
        let options = options
            .application_name("cofre-hsm-keys")
            .disable_statement_logging();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(unavailable)?;
        let ledger = Self {
            inner: Mutex::new(Inner {
                runtime,
                options,
                conn: None,
                generation: 0,
                refused: None,
                unreachable: false,
            }),
        };
        ledger.on_connection(|rt, c| {
            let mut tx = within(rt, c.begin())?;
            within(
                rt,
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(SCHEMA_LOCK)
                    .execute(&mut *tx),
            )?;
            within(rt, sqlx::query(SCHEMA).execute(&mut *tx))?;
            within(rt, tx.commit())
        })?;
        Ok(ledger)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Runs `f` on the connection (opened if needed); a failed round trip drops the
    /// connection so that the next call opens a new one. An open transaction `f` drops
    /// without committing is rolled back.
    fn on_connection<T, E: From<LedgerError>>(
        &self,
        f: impl FnOnce(&tokio::runtime::Runtime, &mut PgConnection) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut g = self.lock();
        let Inner {
            runtime,
            options,
            conn,
            ..
        } = &mut *g;
        if conn.is_none() {
            *conn = Some(within(runtime, options.connect()).map_err(E::from)?);
        }
        let Some(c) = conn.as_mut() else {
            return Err(unavailable("no connection to the key ledger").into());
        };
        let result = f(runtime, c);
        if result.is_err() {
            // Whatever failed (the database, or a refused change), start clean.
            *conn = None;
        }
        result
    }

    /// At start: seeds an empty ledger with the local files, or returns the shared
    /// generation when it extends the local one, or writes the local files when they
    /// extend it; a fork is refused.
    pub fn start(&self, lmk: &Lmk, local: &Snapshot) -> Result<Option<Snapshot>, LedgerError> {
        let (generation, adopt) = self.on_connection(|rt, c| {
            let mut tx = within(rt, c.begin())?;
            let row: Option<Row> = within(rt, sqlx::query_as(LOCK).fetch_optional(&mut *tx))?;
            let shared = match &row {
                Some((_, d, a)) => Some(ledger::verify(d, a, lmk).map_err(refused)?),
                None => None,
            };
            let generation = row.as_ref().map_or(0, |r| r.0);
            let (generation, adopt) = match ledger::reconcile(local, shared.as_ref())? {
                Start::Same => (generation, None),
                Start::Adopt => (generation, shared),
                Start::Seed | Start::Push => {
                    let write = sqlx::query(WRITE)
                        .bind(generation + 1)
                        .bind(&local.store_text)
                        .bind(&local.audit_text);
                    within(rt, write.execute(&mut *tx))?;
                    (generation + 1, None)
                }
            };
            within(rt, tx.commit())?;
            Ok::<_, LedgerError>((generation, adopt))
        })?;
        self.adopted(generation);
        Ok(adopt)
    }

    /// A newer generation than the one held, verified and extending `held`; `None` when
    /// there is none (or it was refused before).
    pub fn pull(
        &self,
        lmk: &Lmk,
        held: Option<&AuditHead>,
    ) -> Result<Option<(i64, Snapshot)>, LedgerError> {
        let (current, was_refused) = {
            let g = self.lock();
            (g.generation, g.refused)
        };
        let row: Option<Row> = self.on_connection(|rt, c| {
            let generation: Option<i64> = within(
                rt,
                sqlx::query_scalar("SELECT generation FROM cofre_key_ledger WHERE id = 1")
                    .fetch_optional(&mut *c),
            )?;
            match generation {
                Some(g) if g != current && Some(g) != was_refused => {
                    within(rt, sqlx::query_as(READ).fetch_optional(&mut *c))
                }
                _ => Ok(None),
            }
        })?;
        let Some((generation, document, audit)) = row else {
            return Ok(None);
        };
        let checked = ledger::verify(&document, &audit, lmk)
            .map_err(refused)
            .and_then(|s| {
                if ledger::contains(&s.audit_text, held) {
                    Ok(s)
                } else {
                    Err(refused(
                        "its audit chain does not extend the one this daemon holds \
                         (a rollback or a fork)",
                    ))
                }
            });
        match checked {
            Ok(s) => Ok(Some((generation, s))),
            Err(e) => {
                self.refused(generation);
                Err(e)
            }
        }
    }

    /// Records the generation now held.
    pub fn adopted(&self, generation: i64) {
        let mut g = self.lock();
        g.generation = generation;
        g.refused = None;
    }

    /// Records whether the database answered the last poll; true when that changed.
    pub fn reachable(&self, answered: bool) -> bool {
        let mut g = self.lock();
        let changed = g.unreachable == answered;
        g.unreachable = !answered;
        changed
    }

    /// Records a generation that failed its checks (not looked at again).
    pub fn refused(&self, generation: i64) {
        self.lock().refused = Some(generation);
    }

    /// One key change: locks the row, hands `change` the shared generation (verified,
    /// extending `held`) and whether it is newer than the one held, and writes the
    /// store and audit texts `change` returns as the next generation, all in one
    /// transaction (rolled back if `change` fails). Returns `change`'s value.
    pub fn change<T, E: From<LedgerError>>(
        &self,
        lmk: &Lmk,
        held: Option<&AuditHead>,
        change: impl FnOnce(Snapshot, bool) -> Result<(T, String, String), E>,
    ) -> Result<T, E> {
        let current = self.lock().generation;
        let (value, generation) = self.on_connection::<_, E>(|rt, c| {
            let mut tx = within(rt, c.begin())?;
            let row: Option<Row> = within(rt, sqlx::query_as(LOCK).fetch_optional(&mut *tx))?;
            let (generation, document, audit) =
                row.ok_or_else(|| unavailable("the key ledger is empty"))?;
            let shared = ledger::verify(&document, &audit, lmk).map_err(refused)?;
            if !ledger::contains(&shared.audit_text, held) {
                return Err(
                    refused("its audit chain does not extend the one this daemon holds").into(),
                );
            }
            let (value, store_text, audit_text) = change(shared, generation != current)?;
            let write = sqlx::query(WRITE)
                .bind(generation + 1)
                .bind(&store_text)
                .bind(&audit_text);
            within(rt, write.execute(&mut *tx))?;
            within(rt, tx.commit())?;
            Ok((value, generation + 1))
        })?;
        self.adopted(generation);
        Ok(value)
    }
}
