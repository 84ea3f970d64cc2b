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

mod cards_ops;
mod idempotency;
mod issuing;
mod mass;
mod portadores;
pub use portadores::LimitChange;
mod portadores_extra;
pub use idempotency::Claim;

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

    /// Creates a customer; the document must be new.
    pub async fn create_customer(
        &self,
        actor: &str,
        document: &str,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<Customer, StoreError> {
        self.create_customer_with_id(actor, "", new_id(), document, name, body)
            .await
    }

    /// Creates a customer with a chosen number for a tenant; number and document must
    /// be new.
    pub async fn create_customer_with_id(
        &self,
        actor: &str,
        tenant: &str,
        id: i64,
        document: &str,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<Customer, StoreError> {
        let c = Customer {
            id,
            document: document.to_owned(),
            name: name.to_owned(),
            body: body.clone(),
            status: "active".into(),
            tenant: tenant.to_owned(),
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        let now = now_ms();
        sqlx::query("INSERT INTO customers (id, document, name, body, status, created_ms, updated_ms, tenant) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(c.id)
            .bind(&c.document)
            .bind(&c.name)
            .bind(c.body.to_string())
            .bind(&c.status)
            .bind(now)
            .bind(now)
            .bind(&c.tenant)
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
        let row = sqlx::query(
            "SELECT id, document, name, body, status, tenant FROM customers WHERE id = $1",
        )
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
            tenant: row.try_get(5).map_err(db)?,
        })
    }

    /// A customer by document.
    pub async fn customer_by_document(
        &self,
        document: &str,
    ) -> Result<Option<Customer>, StoreError> {
        let id: Option<i64> = sqlx::query("SELECT id FROM customers WHERE document = $1")
            .bind(document)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db)?;
        match id {
            Some(id) => Ok(Some(self.customer(id).await?)),
            None => Ok(None),
        }
    }

    /// Applies `change` to a customer (name, document, body, status), with history.
    pub async fn update_customer(
        &self,
        actor: &str,
        id: i64,
        action: &str,
        change: impl FnOnce(&mut Customer),
    ) -> Result<Customer, StoreError> {
        let before = self.customer(id).await?;
        let mut after = before.clone();
        change(&mut after);
        after.id = before.id;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE customers SET document = $1, name = $2, body = $3, status = $4, updated_ms = $5 WHERE id = $6")
            .bind(&after.document)
            .bind(&after.name)
            .bind(after.body.to_string())
            .bind(&after.status)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let to_json =
            |c: &Customer| serde_json::to_value(c).map_err(|e| StoreError::Database(e.to_string()));
        Self::history(
            &mut tx,
            "customer",
            id,
            actor,
            action,
            Some(&to_json(&before)?),
            Some(&to_json(&after)?),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(after)
    }

    /// Applies `change` to an account (product, limit, cycle day, body, status), with history.
    pub async fn update_account(
        &self,
        actor: &str,
        id: i64,
        action: &str,
        change: impl FnOnce(&mut Account),
    ) -> Result<Account, StoreError> {
        let before = self.account(id).await?;
        let mut after = before.clone();
        change(&mut after);
        after.id = before.id;
        after.customer_id = before.customer_id;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE accounts SET product = $1, credit_limit = $2, cycle_day = $3, body = $4, status = $5, updated_ms = $6 WHERE id = $7")
            .bind(&after.product)
            .bind(after.credit_limit)
            .bind(after.cycle_day)
            .bind(after.body.to_string())
            .bind(&after.status)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let to_json =
            |a: &Account| serde_json::to_value(a).map_err(|e| StoreError::Database(e.to_string()));
        Self::history(
            &mut tx,
            "account",
            id,
            actor,
            action,
            Some(&to_json(&before)?),
            Some(&to_json(&after)?),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(after)
    }

    /// The accounts of a customer, oldest first.
    pub async fn accounts_of(&self, customer_id: i64) -> Result<Vec<Account>, StoreError> {
        let ids: Vec<i64> =
            sqlx::query("SELECT id FROM accounts WHERE customer_id = $1 ORDER BY created_ms, id")
                .bind(customer_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()
                .map_err(db)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.account(id).await?);
        }
        Ok(out)
    }

    /// The pool, for modules that keep their own tables (same database, same migrations).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
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
        let tenant = self.customer(customer_id).await?.tenant;
        self.create_account_with_id(
            actor,
            &tenant,
            new_id(),
            customer_id,
            product,
            credit_limit,
            cycle_day,
            body,
        )
        .await
    }

    /// Creates an account with a chosen number for a tenant.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_account_with_id(
        &self,
        actor: &str,
        tenant: &str,
        id: i64,
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
            id,
            customer_id,
            product: product.to_owned(),
            credit_limit,
            cycle_day,
            body: body.clone(),
            status: "active".into(),
            tenant: tenant.to_owned(),
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        issuing::insert_account(&mut tx, actor, &a).await?;
        tx.commit().await.map_err(db)?;
        Ok(a)
    }

    /// An account by number.
    pub async fn account(&self, id: i64) -> Result<Account, StoreError> {
        let row = sqlx::query("SELECT id, customer_id, product, credit_limit, cycle_day, body, status, tenant FROM accounts WHERE id = $1")
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
            tenant: row.try_get(7).map_err(db)?,
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
        let c = issuing::card_of(new, "inactive");
        let mut tx = self.pool.begin().await.map_err(db)?;
        issuing::insert_card(&mut tx, &c).await?;
        Self::history(
            &mut tx,
            "card",
            c.id,
            actor,
            "create",
            None,
            Some(&card_public(&c)),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(c)
    }

    /// A card by record id.
    pub async fn card(&self, id: i64) -> Result<Card, StoreError> {
        self.card_where("id = $1", CardKey::Id(id))
            .await?
            .ok_or(StoreError::NotFound("card"))
    }

    /// A card by PAN token.
    pub async fn card_by_token(&self, token: &str) -> Result<Option<Card>, StoreError> {
        self.card_where("token = $1", CardKey::Text(token)).await
    }

    /// A card by lookup token (the HMAC of its PAN).
    pub async fn card_by_lookup(&self, lookup_token: &str) -> Result<Option<Card>, StoreError> {
        self.card_where("lookup_token = $1", CardKey::Text(lookup_token))
            .await
    }

    /// The cards of an account, oldest first.
    pub async fn cards_of_account(&self, account_id: i64) -> Result<Vec<Card>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE account_id = $1 ORDER BY created_ms, id"
        ))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(card_from_row).collect()
    }

    async fn card_where(
        &self,
        condition: &str,
        key: CardKey<'_>,
    ) -> Result<Option<Card>, StoreError> {
        let sql = format!("SELECT {CARD_COLUMNS} FROM cards WHERE {condition}");
        let q = sqlx::query(&sql);
        let q = match key {
            CardKey::Id(id) => q.bind(id),
            CardKey::Text(t) => q.bind(t.to_owned()),
        };
        q.fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(card_from_row)
            .transpose()
    }

    /// Applies `change` to a card and writes every mutable column, with a history row
    /// (`action`, before/after of the non-secret fields), in one transaction.
    pub async fn update_card(
        &self,
        actor: &str,
        id: i64,
        action: &str,
        change: impl FnOnce(&mut Card),
    ) -> Result<Card, StoreError> {
        let before = self.card(id).await?;
        let mut after = before.clone();
        change(&mut after);
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE cards SET status = $1, body = $2, pin_status = $3, block_code = $4, credit_limit = $5, replaced_by = $6, dcvv2 = $7, pvv = $8, pin_blob = $9, expiry = $10, updated_ms = $11 WHERE id = $12")
            .bind(&after.status)
            .bind(after.body.to_string())
            .bind(&after.pin_status)
            .bind(&after.block_code)
            .bind(after.credit_limit)
            .bind(after.replaced_by)
            .bind(&after.dcvv2)
            .bind(&after.pvv)
            .bind(&after.pin_blob)
            .bind(&after.expiry)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        Self::history(
            &mut tx,
            "card",
            id,
            actor,
            action,
            Some(&card_public(&before)),
            Some(&card_public(&after)),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(after)
    }

    /// Changes a card's status (activation, block, ...), with history.
    pub async fn set_card_status(
        &self,
        actor: &str,
        id: i64,
        status: &str,
    ) -> Result<Card, StoreError> {
        self.update_card(actor, id, "status", |c| c.status = status.to_owned())
            .await
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

const CARD_COLUMNS: &str = "id, account_id, customer_id, token, token_version, lookup_token, masked_pan, kind, expiry, service_code, pvv, pin_blob, status, body, pin_status, block_code, credit_limit, replaced_by, dcvv2, tenant";

enum CardKey<'a> {
    Id(i64),
    Text(&'a str),
}

fn card_from_row(row: &sqlx::any::AnyRow) -> Result<Card, StoreError> {
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
        pin_status: row.try_get(14).map_err(db)?,
        block_code: row.try_get(15).map_err(db)?,
        credit_limit: row.try_get(16).map_err(db)?,
        replaced_by: row.try_get(17).map_err(db)?,
        dcvv2: row.try_get(18).map_err(db)?,
        tenant: row.try_get(19).map_err(db)?,
    })
}

/// The history view of a card: everything but the PIN blob (opaque, but no reason to
/// copy it around).
fn card_public(c: &Card) -> serde_json::Value {
    serde_json::json!({
        "id": c.id, "account_id": c.account_id, "customer_id": c.customer_id,
        "token": c.token, "masked_pan": c.masked_pan, "kind": c.kind, "expiry": c.expiry,
        "service_code": c.service_code, "status": c.status, "pin_status": c.pin_status,
        "block_code": c.block_code, "credit_limit": c.credit_limit,
        "replaced_by": c.replaced_by, "dcvv2": c.dcvv2, "tenant": c.tenant,
    })
}
