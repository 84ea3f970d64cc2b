//! Read connections taken from the pool on first use, and the connection a
//! [`Records`](super::Records) works over.

use sqlx::{AnyConnection, AnyPool};

use super::{StoreError, db};

/// The connection a [`Records`](super::Records) works over.
pub(super) enum Conn<'c> {
    /// A connection at hand (the writer's transaction, a read connection taken).
    Open(&'c mut AnyConnection),
    /// A read-pool connection taken on first use.
    Lazy(&'c mut ReadConnection),
}

impl Conn<'_> {
    pub(super) async fn get(&mut self) -> Result<&mut AnyConnection, StoreError> {
        match self {
            Conn::Open(c) => Ok(c),
            Conn::Lazy(r) => r.get().await,
        }
    }
}

/// A read-pool connection taken on first use
/// ([`Store::read_lazily`](super::Store::read_lazily)): a call whose reads the cache
/// serves takes none. On SQLite taking one and giving it back costs a round trip to the
/// connection's thread (sqlx pings it on release), a cost paid per call on the hottest
/// paths otherwise.
pub struct ReadConnection {
    pool: AnyPool,
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

impl ReadConnection {
    pub(super) fn new(pool: AnyPool) -> Self {
        Self { pool, conn: None }
    }

    /// Whether a connection was taken from the pool.
    pub fn taken(&self) -> bool {
        self.conn.is_some()
    }

    async fn get(&mut self) -> Result<&mut AnyConnection, StoreError> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => self.pool.acquire().await.map_err(db)?,
        };
        Ok(&mut **self.conn.insert(conn))
    }
}

impl std::fmt::Debug for ReadConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.conn.is_some() {
            "ReadConnection(taken)"
        } else {
            "ReadConnection(not yet taken)"
        })
    }
}
