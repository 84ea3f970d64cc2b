//! The shared store's schema and identity in PostgreSQL.
//!
//! The daemon creates its tables at start, idempotently: `cofre_counter_migrations`
//! records each applied step, and every step runs in one transaction under a
//! transaction-scoped advisory lock, so two daemons starting at once apply it once.
//!
//! * `cofre_counter_meta (name, value)`: the store's format and its identity (16
//!   random bytes sealed under the counter MAC key, as in the one-node store).
//! * `cofre_counter_cards (card, record)`: one row per card that ever changed, named
//!   by the HMAC of its PAN, the record sealed with its MAC (see [`super::super::record`]).
//! * `cofre_counter_guard (minute, node, failures)`: PIN failures per calendar minute
//!   and daemon, summed by the brute-force guard of every daemon.
//!
//! The identity is bound to the audit log as for the one-node store
//! ([`super::super::identity`]): the first daemon to find the database empty creates the
//! identity and writes `counters-create` to its audit log in the same transaction (the
//! row is committed only if the audit line was written). Every other start must find
//! the identity the audit log binds. The pair shares one audit chain: it is the one
//! the key ceremony started, copied to each node with the key store (see
//! `docs/pair.md`), so the second node starts only after it has the first node's
//! `counters-create` line.

use sqlx::{PgConnection, Postgres, Row, Transaction};

use super::super::CounterError;
use super::super::identity::{Binding, FORMAT};
use super::super::record::{Seal, StoreId};

/// The advisory lock key of schema changes and identity creation ("cofrecnt").
const SCHEMA_LOCK: i64 = 0x636f_6672_6563_6e74;

/// The schema steps, in order; step `i` is version `i + 1`.
const STEPS: &[&str] = &["CREATE TABLE cofre_counter_meta (
        name text PRIMARY KEY,
        value bytea NOT NULL
    );
    CREATE TABLE cofre_counter_cards (
        card bytea PRIMARY KEY CHECK (octet_length(card) = 32),
        record bytea NOT NULL
    );
    CREATE TABLE cofre_counter_guard (
        minute bigint NOT NULL,
        node bigint NOT NULL,
        failures bigint NOT NULL,
        PRIMARY KEY (minute, node)
    );"];

fn unavailable(e: sqlx::Error) -> CounterError {
    CounterError::Unavailable(e.to_string())
}

/// Applies the steps not yet recorded.
pub(super) async fn migrate(tx: &mut Transaction<'static, Postgres>) -> Result<(), CounterError> {
    let conn: &mut PgConnection = tx;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS cofre_counter_migrations (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    let done: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM cofre_counter_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(unavailable)?;
    let done = usize::try_from(done.unwrap_or(0)).unwrap_or(0);
    if done > STEPS.len() {
        return Err(CounterError::Identity(format!(
            "the counter database is at schema version {done}, newer than this version \
             knows ({}): upgrade cofre",
            STEPS.len()
        )));
    }
    for (i, step) in STEPS.iter().enumerate().skip(done) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(*step))
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        sqlx::query("INSERT INTO cofre_counter_migrations (version) VALUES ($1)")
            .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Reads (or, in an empty database with no binding, creates) the store's identity and
/// checks it against the audit log's `binding`. `record` writes the `counters-create`
/// audit line; the transaction commits only after it did.
pub(super) async fn identity(
    tx: &mut Transaction<'static, Postgres>,
    seal: &Seal,
    binding: Option<Binding>,
    now: u64,
    record: impl FnOnce(StoreId) -> Result<(), String>,
) -> Result<StoreId, CounterError> {
    let conn: &mut PgConnection = tx;
    let rows = sqlx::query("SELECT name, value FROM cofre_counter_meta")
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable)?;
    let get = |name: &str| {
        rows.iter()
            .find(|r| r.try_get::<String, _>("name").is_ok_and(|n| n == name))
            .and_then(|r| r.try_get::<Vec<u8>, _>("value").ok())
    };
    let Some(sealed) = get("identity") else {
        if let Some(b) = binding {
            return Err(CounterError::Identity(format!(
                "the counter database holds no store, but the audit log (line {}) binds \
                 store {}: restore the database, or reset the counters with \
                 `cofre keys counters-reset`",
                b.seq, b.id
            )));
        }
        let id = StoreId::random(&mut rand::rng());
        for (name, value) in [
            ("format", FORMAT.to_be_bytes().to_vec()),
            ("identity", seal.seal_identity(id, now).to_vec()),
        ] {
            sqlx::query("INSERT INTO cofre_counter_meta (name, value) VALUES ($1, $2)")
                .bind(name)
                .bind(value)
                .execute(&mut *conn)
                .await
                .map_err(unavailable)?;
        }
        record(id).map_err(CounterError::Unavailable)?;
        return Ok(id);
    };
    let format = get("format").and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok());
    if format.map(u64::from_be_bytes) != Some(FORMAT) {
        return Err(CounterError::Identity(format!(
            "the counter database's format is not {FORMAT}: not written by this version"
        )));
    }
    let Some((id, _)) = seal.open_identity(&sealed) else {
        return Err(CounterError::Identity(
            "the counter database's identity does not verify under this LMK (written under \
             another LMK, or edited): reset the counters with `cofre keys counters-reset`"
                .into(),
        ));
    };
    match binding {
        Some(b) if b.id == id => Ok(id),
        Some(b) => Err(CounterError::Identity(format!(
            "the counter database is store {id}, but the audit log (line {}) binds store {}: \
             it was replaced, or this node's audit log is not the pair's (copy the key store \
             and audit log from the node that created it, see docs/pair.md)",
            b.seq, b.id
        ))),
        None => Err(CounterError::Identity(format!(
            "the counter database is store {id}, which this node's audit log does not record: \
             copy the key store and audit log from the node that created it (docs/pair.md), \
             or reset the counters with `cofre keys counters-reset`"
        ))),
    }
}

/// Replaces the shared store by an empty one with a new identity (`cofre keys
/// counters-reset --counters`): every card's row and the guard's counts are deleted and
/// a new identity written, in one transaction that commits only after `record` wrote
/// the `counters-reset` audit line. Refused while a daemon is connected to the database.
pub(super) async fn reset(
    tx: &mut Transaction<'static, Postgres>,
    seal: &Seal,
    now: u64,
    record: impl FnOnce(StoreId) -> Result<(), String>,
) -> Result<StoreId, CounterError> {
    migrate(tx).await?;
    let conn: &mut PgConnection = tx;
    let daemons: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'cofre-hsm'",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(unavailable)?;
    if daemons > 0 {
        return Err(CounterError::Identity(format!(
            "{daemons} daemon connection(s) to the counter database: stop every daemon of \
             the pair before resetting the counters"
        )));
    }
    sqlx::raw_sql(
        "DELETE FROM cofre_counter_cards; DELETE FROM cofre_counter_guard; \
         DELETE FROM cofre_counter_meta",
    )
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    let id = StoreId::random(&mut rand::rng());
    for (name, value) in [
        ("format", FORMAT.to_be_bytes().to_vec()),
        ("identity", seal.seal_identity(id, now).to_vec()),
    ] {
        sqlx::query("INSERT INTO cofre_counter_meta (name, value) VALUES ($1, $2)")
            .bind(name)
            .bind(value)
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    record(id).map_err(CounterError::Unavailable)?;
    Ok(id)
}
