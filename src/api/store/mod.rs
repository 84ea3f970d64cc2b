//! The record store: customers, accounts, cards and an append-only history, over
//! `sqlx::Any` so that one code path and one migration set (`migrations/`) serve SQLite
//! and PostgreSQL. Every change and its history row are written in one transaction.
//!
//! Cards are stored by PAN token, masked PAN, lookup token and the PIN verification
//! value: the store has no column that could hold a clear PAN, PIN, CVV or key.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngExt;
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

mod accounts;
mod cards;
mod cards_ops;
mod customers;
mod idempotency;
mod issuing;
mod mass;
mod portadores;
pub use portadores::LimitChange;
mod portadores_extra;
pub use idempotency::Claim;

use cards::{CardKey, card_public};

/// What the store can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A referenced record does not exist (`customer`, `account`, `card`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique value is already taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A rule between records is broken (e.g. an account of another customer).
    #[error("{0}")]
    Rule(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(String),
}

pub(crate) fn db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && d.is_unique_violation()
    {
        return StoreError::Conflict(d.message().to_owned());
    }
    StoreError::Database(e.to_string())
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh 12-digit record number (random: numbers reveal nothing about volumes).
pub(crate) fn new_id() -> i64 {
    rand::rng().random_range(100_000_000_000..1_000_000_000_000)
}

/// A customer record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Customer {
    /// Customer number.
    pub id: i64,
    /// Document (CPF/CNPJ or other id), unique.
    pub document: String,
    /// Name.
    pub name: String,
    /// The request body as received (every field kept, none dropped).
    pub body: serde_json::Value,
    /// `active`, `inactive`, ...
    pub status: String,
    /// The API tenant that owns the record.
    pub tenant: String,
}

/// An account record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Account {
    /// Account number.
    pub id: i64,
    /// Owner.
    pub customer_id: i64,
    /// Product code.
    pub product: String,
    /// Credit limit in minor units.
    pub credit_limit: i64,
    /// Billing cycle day.
    pub cycle_day: i64,
    /// The request body as received.
    pub body: serde_json::Value,
    /// Status.
    pub status: String,
    /// The API tenant that owns the record.
    pub tenant: String,
}

/// A card record (no clear PAN, PIN or CVV).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Card {
    /// Card record id.
    pub id: i64,
    /// Account.
    pub account_id: i64,
    /// Customer.
    pub customer_id: i64,
    /// PAN token (FF1).
    pub token: String,
    /// Token key version.
    pub token_version: i64,
    /// Lookup token (HMAC), unique per PAN.
    pub lookup_token: String,
    /// First 6 and last 4.
    pub masked_pan: String,
    /// physical-credit, debit, prepaid, digital-wallet.
    pub kind: String,
    /// YYMM.
    pub expiry: String,
    /// Service code.
    pub service_code: String,
    /// PIN verification value (PVV).
    pub pvv: String,
    /// The LMK-encrypted PIN from the daemon, hex.
    pub pin_blob: String,
    /// `inactive` until activation, then `active`, `blocked`, `lost`, `stolen`,
    /// `replaced`, `cancelled`.
    pub status: String,
    /// The request body as received (and later non-secret changes merged in).
    pub body: serde_json::Value,
    /// `active` or `blocked` (PIN use blocked by the issuer, beside the daemon's lockout).
    pub pin_status: String,
    /// The processor block code last applied (empty: none).
    pub block_code: String,
    /// Card credit limit in minor units (0: the account's).
    pub credit_limit: i64,
    /// The card that replaced this one, if reissued.
    pub replaced_by: Option<i64>,
    /// Dynamic CVV2: `on` once asked for (static CVV2 refused), `off`.
    pub dcvv2: String,
    /// The API tenant (client's issuer/store id) that owns the record.
    pub tenant: String,
}

/// One history row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow {
    /// `customer`, `account`, `card`.
    pub entity: String,
    /// The record's id.
    pub entity_id: i64,
    /// Who (API client id).
    pub actor: String,
    /// What (`create`, `status`, ...).
    pub action: String,
    /// When, epoch ms.
    pub at_ms: i64,
    /// Non-secret fields before, JSON.
    pub before: Option<serde_json::Value>,
    /// Non-secret fields after, JSON.
    pub after: Option<serde_json::Value>,
}

/// A new card's values (from the daemon) and request body.
#[derive(Debug, Clone)]
pub struct NewCard {
    /// Account.
    pub account_id: i64,
    /// Customer (must own the account).
    pub customer_id: i64,
    /// PAN token and its key version.
    pub token: String,
    /// Token key version.
    pub token_version: i64,
    /// Lookup token.
    pub lookup_token: String,
    /// Masked PAN.
    pub masked_pan: String,
    /// Card kind.
    pub kind: String,
    /// YYMM.
    pub expiry: String,
    /// Service code.
    pub service_code: String,
    /// PVV.
    pub pvv: String,
    /// LMK-encrypted PIN, hex.
    pub pin_blob: String,
    /// The request body.
    pub body: serde_json::Value,
    /// Card credit limit in minor units (0: the account's).
    pub credit_limit: i64,
    /// Owning tenant.
    pub tenant: String,
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

impl Store {
    /// Opens `sqlite://path` (created if missing) or `postgres://...`, and migrates.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let url = if let Some(path) = url.strip_prefix("sqlite://") {
            // The file is created on first start, and so is its directory.
            let file = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(file).parent()
                && !dir.as_os_str().is_empty()
                && !file.starts_with(':')
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Database(format!("{}: {e}", dir.display())))?;
            }
            if path.contains('?') {
                url.to_owned()
            } else {
                format!("sqlite://{path}?mode=rwc")
            }
        } else {
            url.to_owned()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if url.starts_with("sqlite:") { 1 } else { 8 })
            .connect(&url)
            .await
            .map_err(db)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(format!("migration: {e}")))?;
        Ok(Self { pool })
    }

    async fn history(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        entity: &str,
        id: i64,
        actor: &str,
        action: &str,
        before: Option<&serde_json::Value>,
        after: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO history (id, entity, entity_id, actor, action, at_ms, before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(new_id())
            .bind(entity)
            .bind(id)
            .bind(actor)
            .bind(action)
            .bind(now_ms())
            .bind(before.map(ToString::to_string))
            .bind(after.map(ToString::to_string))
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// The pool, for modules that keep their own tables (same database, same migrations).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The history of a record, oldest first.
    pub async fn history_of(&self, entity: &str, id: i64) -> Result<Vec<HistoryRow>, StoreError> {
        let rows = sqlx::query("SELECT entity, entity_id, actor, action, at_ms, before_json, after_json FROM history WHERE entity = $1 AND entity_id = $2 ORDER BY at_ms, id")
            .bind(entity)
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(HistoryRow {
                    entity: r.try_get(0).map_err(db)?,
                    entity_id: r.try_get(1).map_err(db)?,
                    actor: r.try_get(2).map_err(db)?,
                    action: r.try_get(3).map_err(db)?,
                    at_ms: r.try_get(4).map_err(db)?,
                    before: r
                        .try_get::<Option<String>, _>(5)
                        .map_err(db)?
                        .as_deref()
                        .map(json),
                    after: r
                        .try_get::<Option<String>, _>(6)
                        .map_err(db)?
                        .as_deref()
                        .map(json),
                })
            })
            .collect()
    }
}
