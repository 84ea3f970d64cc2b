//! Store methods of the cardholder API added by `migrations/0020`: kinship degrees,
//! personal references, the SMS outbox with delivery states and its rate-limit counts,
//! delinquency periods fed by the billing system, and small lookups (a customer's
//! creation time, a holder by document). Nothing here holds a clear PIN or code.

use serde::Serialize;
use sqlx::FromRow;

use super::{Records, StoreError, db, new_id, now_ms};

/// A personal reference of a portador.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct Reference {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Kinship degree id (`portador_kinship`).
    pub kinship: i64,
    /// Phone kind.
    pub phone_kind: String,
    /// Area code.
    pub area: String,
    /// Number.
    pub number: String,
    /// Extension.
    pub extension: String,
}

/// An SMS waiting in (or gone from) the outbox.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OutboxMessage {
    /// Id.
    pub id: i64,
    /// Tenant.
    pub tenant: String,
    /// The portador.
    pub customer_id: i64,
    /// E.164 destination.
    pub phone: String,
    /// `pin` or `code`.
    pub purpose: String,
    /// The payload, hex (empty once the message left the queue).
    pub payload_hex: String,
    /// Delivery attempts so far.
    pub attempts: i64,
}

/// A new SMS for the outbox.
#[derive(Debug, Clone)]
pub struct NewSms<'a> {
    /// The portador.
    pub customer_id: i64,
    /// The card (PIN messages), else 0.
    pub card_id: i64,
    /// E.164 destination.
    pub phone: &'a str,
    /// `pin` or `code`.
    pub purpose: &'a str,
    /// The payload (a PIN block under the SMS key, or a sealed text).
    pub payload: &'a [u8],
}

impl Records<'_> {
    /// The kinship degrees, by id.
    pub async fn kinship_degrees(&mut self) -> Result<Vec<super::CodeRow>, StoreError> {
        sqlx::query_as("SELECT id, code, description FROM portador_kinship ORDER BY id")
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// When a customer of this tenant was created, epoch ms.
    pub async fn customer_created_ms(&mut self, id: i64) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT created_ms FROM customers WHERE tenant = $1 AND id = $2")
            .bind(self.tenant.as_str())
            .bind(id)
            .fetch_optional(self.db.get().await?)
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound("customer"))
    }

    /// Locks customer `id`'s row until the transaction ends (PostgreSQL; on SQLite the
    /// writer's transaction is the lock): changes of one portador's phones, dependents
    /// and references are serialised.
    pub async fn lock_customer(&mut self, id: i64) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM customers WHERE tenant = $1 AND id = $2{}",
            self.dialect.for_update()
        )))
        .bind(self.tenant.as_str())
        .bind(id)
        .fetch_optional(self.db.get().await?)
        .await
        .map_err(db)?
        .map(|_| ())
        .ok_or(StoreError::NotFound("customer"))
    }

    /// The customers of this tenant with this document that own an account.
    pub async fn account_holders_by_document(
        &mut self,
        document: &str,
    ) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar("SELECT c.id FROM customers c WHERE c.tenant = $1 AND c.document = $2 AND EXISTS (SELECT 1 FROM accounts a WHERE a.tenant = c.tenant AND a.customer_id = c.id) ORDER BY c.id")
            .bind(self.tenant.as_str())
            .bind(document)
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// The holder links of a dependent (the accounts they hold a card on).
    pub async fn holders_of(
        &mut self,
        dependent_id: i64,
    ) -> Result<Vec<super::DependentLink>, StoreError> {
        sqlx::query_as("SELECT dependent_id, holder_id, account_id, card_id FROM portador_dependents WHERE tenant = $1 AND dependent_id = $2 ORDER BY created_ms, account_id")
            .bind(self.tenant.as_str())
            .bind(dependent_id)
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// Moves a dependent's link on `account_id` to its replacement card.
    pub async fn relink_dependent_card(
        &mut self,
        old_card: i64,
        new_card: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE portador_dependents SET card_id = $1 WHERE tenant = $2 AND card_id = $3",
        )
        .bind(new_card)
        .bind(self.tenant.as_str())
        .bind(old_card)
        .execute(self.db.get().await?)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Adds a personal reference.
    pub async fn add_reference(
        &mut self,
        customer_id: i64,
        r: &Reference,
    ) -> Result<i64, StoreError> {
        let id = new_id();
        sqlx::query("INSERT INTO portador_references (id, tenant, customer_id, name, kinship, phone_kind, area, number, extension, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(id)
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .bind(r.name.as_str())
            .bind(r.kinship)
            .bind(r.phone_kind.as_str())
            .bind(r.area.as_str())
            .bind(r.number.as_str())
            .bind(r.extension.as_str())
            .bind(now_ms())
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(id)
    }

    /// A portador's references, oldest first.
    pub async fn references_of(&mut self, customer_id: i64) -> Result<Vec<Reference>, StoreError> {
        sqlx::query_as("SELECT id, name, kinship, phone_kind, area, number, extension FROM portador_references WHERE tenant = $1 AND customer_id = $2 ORDER BY created_ms, id")
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// Queues an SMS (`queued`, due now).
    pub async fn queue_sms_message(&mut self, m: &NewSms<'_>) -> Result<i64, StoreError> {
        let id = new_id();
        let now = now_ms();
        sqlx::query("INSERT INTO sms_outbox (id, tenant, customer_id, phone, payload_hex, created_ms, status, purpose, card_id, attempts, next_attempt_ms, done_ms, last_error) VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8, 0, $9, 0, '')")
            .bind(id)
            .bind(self.tenant.as_str())
            .bind(m.customer_id)
            .bind(m.phone)
            .bind(hex::encode_upper(m.payload))
            .bind(now)
            .bind(m.purpose)
            .bind(m.card_id)
            .bind(now)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(id)
    }

    /// Messages of `purpose` for `phone` queued since `since_ms` (any state but
    /// `failed`: a message the gateway never took does not count against the holder).
    pub async fn sms_count_for_phone(
        &mut self,
        phone: &str,
        purpose: &str,
        since_ms: i64,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM sms_outbox WHERE tenant = $1 AND phone = $2 AND purpose = $3 AND created_ms >= $4 AND status <> 'failed'")
            .bind(self.tenant.as_str())
            .bind(phone)
            .bind(purpose)
            .bind(since_ms)
            .fetch_one(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// PIN messages for `card_id` queued since `since_ms` (not `failed`).
    pub async fn sms_count_for_card(
        &mut self,
        card_id: i64,
        since_ms: i64,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM sms_outbox WHERE tenant = $1 AND card_id = $2 AND purpose = 'pin' AND created_ms >= $3 AND status <> 'failed'")
            .bind(self.tenant.as_str())
            .bind(card_id)
            .bind(since_ms)
            .fetch_one(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// Opens a delinquency period of an account of the portador.
    pub async fn open_delinquency(
        &mut self,
        customer_id: i64,
        account_id: i64,
        started_ms: i64,
        days_late: i64,
        amount: i64,
        detail: &str,
    ) -> Result<i64, StoreError> {
        let id = new_id();
        sqlx::query("INSERT INTO portador_delinquencies (id, tenant, customer_id, account_id, started_ms, ended_ms, days_late, amount, detail) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8)")
            .bind(id)
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .bind(account_id)
            .bind(started_ms)
            .bind(days_late)
            .bind(amount)
            .bind(detail)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(id)
    }

    /// Updates a delinquency period of the portador (days late, amount, end); `false`
    /// if the portador has no such period.
    pub async fn update_delinquency(
        &mut self,
        customer_id: i64,
        id: i64,
        days_late: i64,
        amount: i64,
        ended_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE portador_delinquencies SET days_late = $1, amount = $2, ended_ms = $3 WHERE tenant = $4 AND customer_id = $5 AND id = $6")
            .bind(days_late)
            .bind(amount)
            .bind(ended_ms)
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .bind(id)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }
}

/// The outbox's system calls (the delivery worker: every tenant's messages).
pub mod outbox {
    use sqlx::AnyConnection;

    use super::{OutboxMessage, StoreError, db};

    /// Up to `limit` queued messages due at `now_ms`, oldest first.
    pub async fn due(
        conn: &mut AnyConnection,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        sqlx::query_as("SELECT id, tenant, customer_id, phone, purpose, payload_hex, attempts FROM sms_outbox WHERE status = 'queued' AND next_attempt_ms <= $1 ORDER BY next_attempt_ms, id LIMIT $2")
            .bind(now_ms)
            .bind(limit)
            .fetch_all(conn)
            .await
            .map_err(db)
    }

    /// Claims a queued message due at `now_ms` until `until_ms`; `false` if it is not
    /// due (another sender holds it, or it left the queue).
    pub async fn claim(
        conn: &mut AnyConnection,
        id: i64,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE sms_outbox SET next_attempt_ms = $1 WHERE id = $2 AND status = 'queued' AND next_attempt_ms <= $3")
            .bind(until_ms)
            .bind(id)
            .bind(now_ms)
            .execute(conn)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    /// The message left the queue: `sent` or `failed`, its payload erased.
    pub async fn finish(
        conn: &mut AnyConnection,
        id: i64,
        status: &str,
        now_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sms_outbox SET status = $1, payload_hex = '', done_ms = $2, attempts = attempts + 1, last_error = $3 WHERE id = $4 AND status = 'queued'")
            .bind(status)
            .bind(now_ms)
            .bind(error)
            .bind(id)
            .execute(conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// A failed attempt: tried again at `next_ms`.
    pub async fn retry(
        conn: &mut AnyConnection,
        id: i64,
        next_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sms_outbox SET attempts = attempts + 1, next_attempt_ms = $1, last_error = $2 WHERE id = $3 AND status = 'queued'")
            .bind(next_ms)
            .bind(error)
            .bind(id)
            .execute(conn)
            .await
            .map_err(db)?;
        Ok(())
    }
}
