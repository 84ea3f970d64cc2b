//! The record store: customers, accounts, cards, their append-only history, mass
//! issues, the cardholder API's tables and the idempotency answers, over `sqlx::Any` so
//! that one code path and one migration set (`migrations/`) serve SQLite and
//! PostgreSQL.
//!
//! Layer: imports only [`crate::api::domain`]; features and the HTTP edge import it.
//!
//! * **Tenant-scoped.** Every record method is a method of [`Records`], which carries the
//!   caller's [`Tenant`] and puts it in every statement: there is no wildcard and no
//!   method that reads another tenant's row. Unique values (documents, customer and
//!   account numbers) are unique per tenant. The only unscoped calls are the system's own
//!   ([`Store::purge_idempotency`], mass-issue recovery), which no client reaches.
//! * **One writer.** Every change goes through the [`writer`]: a task that owns the one
//!   write connection and commits the changes of many concurrent calls in one durable
//!   transaction (group commit), each call in its own savepoint, then answers them. A
//!   read-modify-write happens inside that transaction (and, on PostgreSQL, under a
//!   `SELECT ... FOR UPDATE` row lock, so that a second facade on the same database
//!   cannot interleave): no lost update, and a history row's "before" is the row as the
//!   transaction saw it. Reads that feed no write use the read pool (SQLite in WAL mode:
//!   readers never wait for the writer), a connection taken only when the read cache
//!   cannot answer ([`ReadConnection`]).
//! * **Idempotency in the same transaction.** A call's claim, its effects and its sealed
//!   answer commit together ([`writer::Claim`]); see [`writer`] for what a crash leaves.
//! * Rows map by column name (`sqlx::FromRow`); a stored JSON body that does not parse
//!   is an error, never `null`. Cards are stored by PAN token, masked PAN, lookup token
//!   and PVV: no column could hold a clear PAN, PIN, CVV or key.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngExt;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, install_default_drivers};
use sqlx::{AnyConnection, AnyPool, ConnectOptions};

mod accounts;
mod cache;
mod cards;
mod customers;
mod history;
mod idempotency;
mod in_progress;
mod key_filter;
mod mass;
mod mass_lease;
mod portadores;
mod portadores_br;
mod portadores_extra;
mod read;
mod rows;
pub mod writer;

pub use cache::RecordCache;
pub use cards::pan_issued;
pub use history::{AppendOnly, AppendOp, Appends};
pub use idempotency::Recorded;
pub use in_progress::Begun;
pub use key_filter::KeyFilter;
pub use mass::{BatchCard, MassIssue};
pub use mass_lease::{Claim as BatchClaim, CommittedCard};
pub use portadores::LimitChange;
pub use portadores_br::{NewSms, OutboxMessage, Reference, outbox};
pub use portadores_extra::{CodeRow, Delinquency, DependentLink, Flag, Occurrence, Phone};
pub use read::ReadConnection;
pub use rows::{Account, Body, Card, Customer, HistoryRow, NewCard};
pub use writer::{Answer, AnswerSeal, Claim, Committed, Op, OpOutcome, Writer};

use crate::api::domain::Tenant;
use read::Conn;

/// What the store can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A referenced record does not exist (`customer`, `account`, `card`, ...).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique value is already taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A rule between records is broken (e.g. an account of another customer).
    #[error("{0}")]
    Rule(String),
    /// A stored value does not parse (a corrupt body, an unknown status).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(String),
}

pub(crate) fn db(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(d.message().to_owned())
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Database(e.to_string()),
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh 12-digit record number (random: numbers reveal nothing about volumes).
pub fn new_id() -> i64 {
    rand::rng().random_range(100_000_000_000..1_000_000_000_000)
}

/// Which SQL dialect the database speaks where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (one writer; the writer's transaction is the lock).
    Sqlite,
    /// PostgreSQL (row locks for read-modify-write).
    Postgres,
}

impl Dialect {
    /// The suffix that locks the rows a read-modify-write reads.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }
}

/// The store: a read pool and the writer.
#[derive(Debug, Clone)]
pub struct Store {
    read: AnyPool,
    writer: Writer,
    dialect: Dialect,
    cache: Option<Arc<RecordCache>>,
    keys: Option<Arc<KeyFilter>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Read connections: SQLite readers are cheap and never wait for the writer in WAL mode.
const READ_CONNECTIONS: u32 = 8;

fn normalise_url(url: &str) -> Result<(String, Dialect), StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        // The file is created on first start, and so is its directory.
        let file = path.split('?').next().unwrap_or(path);
        if let Some(dir) = std::path::Path::new(file).parent()
            && !dir.as_os_str().is_empty()
            && !file.starts_with(':')
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Database(format!("{}: {e}", dir.display())))?;
        }
        let url = if path.contains('?') {
            url.to_owned()
        } else {
            format!("sqlite://{path}?mode=rwc")
        };
        return Ok((url, Dialect::Sqlite));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((url.to_owned(), Dialect::Postgres));
    }
    Err(StoreError::Database(
        "the database URL is sqlite://... or postgres://...".into(),
    ))
}

async fn connect(url: &str, dialect: Dialect, writer: bool) -> Result<AnyConnection, StoreError> {
    let options: AnyConnectOptions = url.parse().map_err(db)?;
    let mut conn = options
        .disable_statement_logging()
        .connect()
        .await
        .map_err(db)?;
    if dialect == Dialect::Sqlite {
        use sqlx::Executor;
        // WAL: readers do not block the writer nor it them. synchronous=FULL: a commit is
        // on disk before its answer leaves (durability over speed; group commit pays).
        let pragmas = if writer {
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536"
        } else {
            "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON"
        };
        conn.execute(pragmas).await.map_err(db)?;
    }
    Ok(conn)
}

/// Loads the recorded idempotency keys into the filter (SQLite: pages by rowid), then
/// marks it ready (until then every call is looked up). A failure leaves it not ready:
/// correct, only slower.
async fn load_keys(read: AnyPool, filter: Arc<KeyFilter>) {
    let mut after: i64 = 0;
    loop {
        let page: Result<Vec<(i64, String, String)>, _> = sqlx::query_as(
            "SELECT rowid, client_id, request_key FROM idempotency WHERE rowid > $1 ORDER BY rowid LIMIT 10000",
        )
        .bind(after)
        .fetch_all(&read)
        .await;
        match page {
            Ok(rows) if rows.is_empty() => break,
            Ok(rows) => {
                for (rowid, client, key) in &rows {
                    filter.insert(client, key);
                    after = *rowid;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "idempotency key filter not loaded");
                return;
            }
        }
    }
    filter.set_ready();
}

impl Store {
    /// The idempotency key filter (SQLite only).
    pub fn key_filter(&self) -> Option<&Arc<KeyFilter>> {
        self.keys.as_ref()
    }

    /// Opens `sqlite://path` (created if missing) or `postgres://...`, migrates, and
    /// starts the writer; idempotency answers are sealed with `seal`.
    pub async fn open(url: &str, seal: Arc<dyn AnswerSeal>) -> Result<Self, StoreError> {
        install_default_drivers();
        let (url, dialect) = normalise_url(url)?;
        let mut write = connect(&url, dialect, true).await?;
        MIGRATOR
            .run(&mut write)
            .await
            .map_err(|e| StoreError::Database(format!("migration: {e}")))?;
        if dialect == Dialect::Postgres {
            in_progress::create(&mut write).await?;
        }
        let reader_url = url.clone();
        let read = AnyPoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            // A ping before each use is a round trip to the connection's thread on
            // SQLite (sqlx runs each SQLite connection on a thread of its own) and tests
            // nothing a local file can lose; a PostgreSQL server connection can drop.
            .test_before_acquire(dialect == Dialect::Postgres)
            .min_connections(0)
            .idle_timeout(Some(Duration::from_secs(300)))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        use sqlx::Executor;
                        conn.execute("PRAGMA busy_timeout = 10000; PRAGMA query_only = ON")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy(&reader_url)
            .map_err(db)?;
        // On SQLite this process's writer is the only writer: reads may be cached.
        let cache = (dialect == Dialect::Sqlite).then(|| Arc::new(RecordCache::default()));
        let keys = (dialect == Dialect::Sqlite).then(|| Arc::new(KeyFilter::default()));
        let reconnect_url = url.clone();
        let reconnect: writer::Reconnect = Arc::new(move || {
            let url = reconnect_url.clone();
            Box::pin(async move { connect(&url, dialect, true).await })
        });
        let writer = Writer::start(write, dialect, seal, cache.clone(), keys.clone(), reconnect);
        if let Some(filter) = &keys {
            tokio::spawn(load_keys(read.clone(), Arc::clone(filter)));
        }
        Ok(Self {
            read,
            writer,
            dialect,
            cache,
            keys,
        })
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The read cache (SQLite only), for records read on the read pool.
    pub fn cache(&self) -> Option<&Arc<RecordCache>> {
        self.cache.as_ref()
    }

    /// The writer.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// A read connection (WAL snapshot on SQLite).
    pub async fn read(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        self.read.acquire().await.map_err(db)
    }

    /// A read connection taken from the pool only when a read needs the database.
    pub fn read_lazily(&self) -> ReadConnection {
        ReadConnection::new(self.read.clone())
    }

    /// Runs `op` in the writer's next transaction (no idempotency claim): the mass-issue
    /// worker, recovery and purges.
    pub async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        self.writer.write(op).await
    }

    /// Closes the pools and stops the writer once its queue is empty.
    pub async fn close(&self) {
        self.read.close().await;
        self.writer.close().await;
    }
}

/// A pinned, boxed, sendable future (an operation run inside the writer's transaction).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// One tenant's records, read or changed over one connection (a read connection, or the
/// writer's transaction), on behalf of one actor (the API client id, or `cofre` for the
/// system), who is named in every history row.
pub struct Records<'c> {
    db: Conn<'c>,
    tenant: Tenant,
    actor: Arc<str>,
    dialect: Dialect,
    cache: Option<Arc<RecordCache>>,
}

impl std::fmt::Debug for Records<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Records({}, {})", self.tenant, self.actor)
    }
}

impl<'c> Records<'c> {
    /// `tenant`'s records over `db`, changes made by `actor`.
    pub fn new(db: &'c mut AnyConnection, dialect: Dialect, tenant: Tenant, actor: &str) -> Self {
        Self {
            db: Conn::Open(db),
            tenant,
            actor: Arc::from(actor),
            dialect,
            cache: None,
        }
    }

    /// `tenant`'s records over a read connection taken on first use.
    pub fn over_read(
        db: &'c mut ReadConnection,
        dialect: Dialect,
        tenant: Tenant,
        actor: &str,
    ) -> Self {
        Self {
            db: Conn::Lazy(db),
            tenant,
            actor: Arc::from(actor),
            dialect,
            cache: None,
        }
    }

    /// Reads through `cache` (read-pool records only: the writer's transaction must see
    /// its own rows, never a cached copy).
    #[must_use]
    pub fn with_cache(mut self, cache: Option<Arc<RecordCache>>) -> Self {
        self.cache = cache;
        self
    }

    /// The tenant.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The actor.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    fn t(&self) -> String {
        self.tenant.as_str().to_owned()
    }
}
