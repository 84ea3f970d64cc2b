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

fn db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && d.is_unique_violation()
    {
        return StoreError::Conflict(d.message().to_owned());
    }
    StoreError::Database(e.to_string())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh 12-digit record number (random: numbers reveal nothing about volumes).
fn new_id() -> i64 {
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
    /// `inactive` until activation, then `active`, `blocked`, ...
    pub status: String,
    /// The request body as received.
    pub body: serde_json::Value,
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

    /// Creates a customer; the document must be new.
    pub async fn create_customer(
        &self,
        actor: &str,
        document: &str,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<Customer, StoreError> {
        let c = Customer {
            id: new_id(),
            document: document.to_owned(),
            name: name.to_owned(),
            body: body.clone(),
            status: "active".into(),
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        let now = now_ms();
        sqlx::query("INSERT INTO customers (id, document, name, body, status, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(c.id)
            .bind(&c.document)
            .bind(&c.name)
            .bind(c.body.to_string())
            .bind(&c.status)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let after = serde_json::to_value(&c).map_err(|e| StoreError::Database(e.to_string()))?;
        Self::history(
            &mut tx,
            "customer",
            c.id,
            actor,
            "create",
            None,
            Some(&after),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(c)
    }

    /// A customer by number.
    pub async fn customer(&self, id: i64) -> Result<Customer, StoreError> {
        let row =
            sqlx::query("SELECT id, document, name, body, status FROM customers WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?
                .ok_or(StoreError::NotFound("customer"))?;
        Ok(Customer {
            id: row.try_get(0).map_err(db)?,
            document: row.try_get(1).map_err(db)?,
            name: row.try_get(2).map_err(db)?,
            body: json(&row.try_get::<String, _>(3).map_err(db)?),
            status: row.try_get(4).map_err(db)?,
        })
    }

    /// Creates an account for an existing customer.
    pub async fn create_account(
        &self,
        actor: &str,
        customer_id: i64,
        product: &str,
        credit_limit: i64,
        cycle_day: i64,
        body: &serde_json::Value,
    ) -> Result<Account, StoreError> {
        self.customer(customer_id).await?;
        if !(1..=31).contains(&cycle_day) {
            return Err(StoreError::Rule("billing cycle day must be 1-31".into()));
        }
        let a = Account {
            id: new_id(),
            customer_id,
            product: product.to_owned(),
            credit_limit,
            cycle_day,
            body: body.clone(),
            status: "active".into(),
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        let now = now_ms();
        sqlx::query("INSERT INTO accounts (id, customer_id, product, credit_limit, cycle_day, body, status, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(a.id)
            .bind(a.customer_id)
            .bind(&a.product)
            .bind(a.credit_limit)
            .bind(a.cycle_day)
            .bind(a.body.to_string())
            .bind(&a.status)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let after = serde_json::to_value(&a).map_err(|e| StoreError::Database(e.to_string()))?;
        Self::history(
            &mut tx,
            "account",
            a.id,
            actor,
            "create",
            None,
            Some(&after),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(a)
    }

    /// An account by number.
    pub async fn account(&self, id: i64) -> Result<Account, StoreError> {
        let row = sqlx::query("SELECT id, customer_id, product, credit_limit, cycle_day, body, status FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound("account"))?;
        Ok(Account {
            id: row.try_get(0).map_err(db)?,
            customer_id: row.try_get(1).map_err(db)?,
            product: row.try_get(2).map_err(db)?,
            credit_limit: row.try_get(3).map_err(db)?,
            cycle_day: row.try_get(4).map_err(db)?,
            body: json(&row.try_get::<String, _>(5).map_err(db)?),
            status: row.try_get(6).map_err(db)?,
        })
    }

    /// Creates an inactive card record on an account of the customer.
    pub async fn create_card(&self, actor: &str, new: NewCard) -> Result<Card, StoreError> {
        let account = self.account(new.account_id).await?;
        if account.customer_id != new.customer_id {
            return Err(StoreError::Rule(
                "the account does not belong to the customer".into(),
            ));
        }
        let c = Card {
            id: new_id(),
            account_id: new.account_id,
            customer_id: new.customer_id,
            token: new.token,
            token_version: new.token_version,
            lookup_token: new.lookup_token,
            masked_pan: new.masked_pan,
            kind: new.kind,
            expiry: new.expiry,
            service_code: new.service_code,
            pvv: new.pvv,
            pin_blob: new.pin_blob,
            status: "inactive".into(),
            body: new.body,
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        let now = now_ms();
        sqlx::query("INSERT INTO cards (id, account_id, customer_id, token, token_version, lookup_token, masked_pan, kind, expiry, service_code, pvv, pin_blob, status, body, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)")
            .bind(c.id)
            .bind(c.account_id)
            .bind(c.customer_id)
            .bind(&c.token)
            .bind(c.token_version)
            .bind(&c.lookup_token)
            .bind(&c.masked_pan)
            .bind(&c.kind)
            .bind(&c.expiry)
            .bind(&c.service_code)
            .bind(&c.pvv)
            .bind(&c.pin_blob)
            .bind(&c.status)
            .bind(c.body.to_string())
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let after = card_public(&c);
        Self::history(&mut tx, "card", c.id, actor, "create", None, Some(&after)).await?;
        tx.commit().await.map_err(db)?;
        Ok(c)
    }

    /// A card by record id.
    pub async fn card(&self, id: i64) -> Result<Card, StoreError> {
        let row = sqlx::query("SELECT id, account_id, customer_id, token, token_version, lookup_token, masked_pan, kind, expiry, service_code, pvv, pin_blob, status, body FROM cards WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound("card"))?;
        Ok(Card {
            id: row.try_get(0).map_err(db)?,
            account_id: row.try_get(1).map_err(db)?,
            customer_id: row.try_get(2).map_err(db)?,
            token: row.try_get(3).map_err(db)?,
            token_version: row.try_get(4).map_err(db)?,
            lookup_token: row.try_get(5).map_err(db)?,
            masked_pan: row.try_get(6).map_err(db)?,
            kind: row.try_get(7).map_err(db)?,
            expiry: row.try_get(8).map_err(db)?,
            service_code: row.try_get(9).map_err(db)?,
            pvv: row.try_get(10).map_err(db)?,
            pin_blob: row.try_get(11).map_err(db)?,
            status: row.try_get(12).map_err(db)?,
            body: json(&row.try_get::<String, _>(13).map_err(db)?),
        })
    }

    /// Changes a card's status (activation, block, ...), with history.
    pub async fn set_card_status(
        &self,
        actor: &str,
        id: i64,
        status: &str,
    ) -> Result<Card, StoreError> {
        let before = self.card(id).await?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE cards SET status = $1, updated_ms = $2 WHERE id = $3")
            .bind(status)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let mut after = before.clone();
        after.status = status.to_owned();
        Self::history(
            &mut tx,
            "card",
            id,
            actor,
            "status",
            Some(&card_public(&before)),
            Some(&card_public(&after)),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(after)
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

/// The history view of a card: everything but the PIN blob (opaque, but no reason to
/// copy it around).
fn card_public(c: &Card) -> serde_json::Value {
    serde_json::json!({
        "id": c.id, "account_id": c.account_id, "customer_id": c.customer_id,
        "token": c.token, "masked_pan": c.masked_pan, "kind": c.kind, "expiry": c.expiry,
        "service_code": c.service_code, "status": c.status,
    })
}
