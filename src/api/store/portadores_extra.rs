//! Store methods of the cardholder API's blocks, dependents, phones and history (tables of `migrations/0007`): block
//! types, occurrences, delinquencies, dependents, phones and their SMS confirmation
//! codes, the SMS outbox, reference tables, and the paginated history of a portador.
//! Nothing here holds a clear PAN, PIN or key; confirmation codes are kept as hashes.

use serde::Serialize;
use sqlx::FromRow;

use super::{Records, StoreError, db, new_id, now_ms};

/// A row of a code table (block types, education, occupations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct CodeRow {
    /// Numeric id.
    pub id: i64,
    /// Stable code (`PERDA`, `MEDIO_COMPLETO`, ...).
    pub code: String,
    /// Description.
    pub description: String,
}

/// Which code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeTable {
    /// `portador_block_types`.
    BlockTypes,
    /// `portador_education`.
    Education,
    /// `portador_occupations`.
    Occupations,
}

impl CodeTable {
    fn name(self) -> &'static str {
        match self {
            CodeTable::BlockTypes => "portador_block_types",
            CodeTable::Education => "portador_education",
            CodeTable::Occupations => "portador_occupations",
        }
    }
}

/// One occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct Occurrence {
    /// Id.
    pub id: i64,
    /// The portador (customer number).
    pub customer_id: i64,
    /// What (`bloqueio`, `senha_recusada`, ...).
    pub kind: String,
    /// Detail (never a secret value).
    pub detail: String,
    /// Who (API client id).
    pub actor: String,
    /// When, epoch ms.
    pub at_ms: i64,
}

/// One delinquency period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct Delinquency {
    /// Id.
    pub id: i64,
    /// Account.
    pub account_id: i64,
    /// Start, epoch ms.
    pub started_ms: i64,
    /// End, epoch ms (open: none).
    pub ended_ms: Option<i64>,
    /// Days late.
    pub days_late: i64,
    /// Amount in minor units.
    pub amount: i64,
    /// Detail.
    pub detail: String,
}

/// A dependent link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct DependentLink {
    /// The dependent's customer number.
    pub dependent_id: i64,
    /// The holder's customer number.
    pub holder_id: i64,
    /// The holder's account the card is on.
    pub account_id: i64,
    /// The dependent's card.
    pub card_id: i64,
}

/// A phone of a portador.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct Phone {
    /// Id.
    pub id: i64,
    /// Owner.
    pub customer_id: i64,
    /// `RESIDENCIAL`, `COMERCIAL`, `CELULAR`, `OUTROS`.
    pub kind: String,
    /// Area code.
    pub area: String,
    /// Number.
    pub number: String,
    /// Extension (empty: none).
    pub extension: String,
    /// The portador asked for SMS on this phone.
    #[sqlx(try_from = "i64")]
    pub wants_sms: Flag,
    /// Digital invoice by SMS.
    #[sqlx(try_from = "i64")]
    pub digital_invoice: Flag,
    /// Confirmed for SMS with a one-time code.
    #[sqlx(try_from = "i64")]
    pub sms_confirmed: Flag,
    /// SHA-256 of the pending code (empty: none pending).
    #[serde(skip)]
    pub code_hash: String,
    /// The pending code's expiry, epoch ms.
    #[serde(skip)]
    pub code_expires_ms: i64,
    /// Wrong tries of the pending code.
    #[serde(skip)]
    pub code_failures: i64,
}

/// A stored 0/1 column as a boolean (anything else is a corrupt row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Flag(pub bool);

impl TryFrom<i64> for Flag {
    type Error = crate::api::domain::Invalid;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        match v {
            0 => Ok(Flag(false)),
            1 => Ok(Flag(true)),
            _ => Err(crate::api::domain::Invalid("a flag is 0 or 1")),
        }
    }
}

impl std::ops::Deref for Flag {
    type Target = bool;
    fn deref(&self) -> &bool {
        &self.0
    }
}

const PHONE_COLUMNS: &str = "id, customer_id, kind, area, number, extension, wants_sms, digital_invoice, sms_confirmed, code_hash, code_expires_ms, code_failures";

impl Records<'_> {
    /// The block types, by id (reference data, the same for every tenant).
    pub async fn block_types(&mut self) -> Result<Vec<CodeRow>, StoreError> {
        self.code_table(CodeTable::BlockTypes).await
    }

    /// The education levels, by id.
    pub async fn education_levels(&mut self) -> Result<Vec<CodeRow>, StoreError> {
        self.code_table(CodeTable::Education).await
    }

    /// The occupations, by id.
    pub async fn occupations(&mut self) -> Result<Vec<CodeRow>, StoreError> {
        self.code_table(CodeTable::Occupations).await
    }

    async fn code_table(&mut self, table: CodeTable) -> Result<Vec<CodeRow>, StoreError> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, code, description FROM {} ORDER BY id",
            table.name()
        )))
        .fetch_all(self.db.get().await?)
        .await
        .map_err(db)
    }

    /// Records an occurrence for a portador of this tenant (refusals, blocks, ...).
    /// `detail` must never carry a PAN, PIN, PIN block, CVV or key.
    pub async fn record_occurrence(
        &mut self,
        customer_id: i64,
        kind: &str,
        detail: &str,
    ) -> Result<i64, StoreError> {
        let id = new_id();
        sqlx::query("INSERT INTO portador_occurrences (id, tenant, customer_id, kind, detail, actor, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .bind(kind)
            .bind(detail)
            .bind(&*self.actor)
            .bind(now_ms())
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(id)
    }

    /// A portador's occurrences with `from_ms <= at_ms < to_ms`, oldest first.
    pub async fn occurrences(
        &mut self,
        customer_id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Occurrence>, StoreError> {
        sqlx::query_as("SELECT id, customer_id, kind, detail, actor, at_ms FROM portador_occurrences WHERE tenant = $1 AND customer_id = $2 AND at_ms >= $3 AND at_ms < $4 ORDER BY at_ms, id")
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// A portador's delinquency periods, newest first.
    pub async fn delinquencies(
        &mut self,
        customer_id: i64,
    ) -> Result<Vec<Delinquency>, StoreError> {
        sqlx::query_as("SELECT id, account_id, started_ms, ended_ms, days_late, amount, detail FROM portador_delinquencies WHERE tenant = $1 AND customer_id = $2 ORDER BY started_ms DESC, id")
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// Links a dependent (customer) to a holder's account and its card. One person may
    /// be an additional on several accounts; twice on one account is `Conflict`.
    pub async fn link_dependent(
        &mut self,
        dependent_id: i64,
        holder_id: i64,
        account_id: i64,
        card_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO portador_dependents (tenant, dependent_id, holder_id, account_id, card_id, created_ms) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(self.tenant.as_str())
            .bind(dependent_id)
            .bind(holder_id)
            .bind(account_id)
            .bind(card_id)
            .bind(now_ms())
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// A holder's dependents, oldest first.
    pub async fn dependents_of(
        &mut self,
        holder_id: i64,
    ) -> Result<Vec<DependentLink>, StoreError> {
        sqlx::query_as("SELECT dependent_id, holder_id, account_id, card_id FROM portador_dependents WHERE tenant = $1 AND holder_id = $2 ORDER BY created_ms, dependent_id")
            .bind(self.tenant.as_str())
            .bind(holder_id)
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// Adds a phone to a portador. `kind`, `area`, `number`, `extension` are checked by
    /// the caller; `flags` are (wants SMS, digital invoice).
    pub async fn add_phone(
        &mut self,
        customer_id: i64,
        fields: [&str; 4],
        flags: (bool, bool),
    ) -> Result<Phone, StoreError> {
        let [kind, area, number, extension] = fields;
        let id = new_id();
        sqlx::query("INSERT INTO portador_phones (id, tenant, customer_id, kind, area, number, extension, wants_sms, digital_invoice, sms_confirmed, code_hash, code_expires_ms, code_failures, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, '', 0, 0, $10)")
            .bind(id)
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .bind(kind)
            .bind(area)
            .bind(number)
            .bind(extension)
            .bind(i64::from(flags.0))
            .bind(i64::from(flags.1))
            .bind(now_ms())
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        self.phone(customer_id, id)
            .await?
            .ok_or(StoreError::NotFound("phone"))
    }

    /// A portador's phones, oldest first.
    pub async fn phones_of(&mut self, customer_id: i64) -> Result<Vec<Phone>, StoreError> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PHONE_COLUMNS} FROM portador_phones WHERE tenant = $1 AND customer_id = $2 ORDER BY created_ms, id"
        )))
        .bind(self.tenant.as_str())
        .bind(customer_id)
        .fetch_all(self.db.get().await?)
        .await
        .map_err(db)
    }

    /// A phone of a portador (another portador's phone is `None`).
    pub async fn phone(&mut self, customer_id: i64, id: i64) -> Result<Option<Phone>, StoreError> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PHONE_COLUMNS} FROM portador_phones WHERE tenant = $1 AND customer_id = $2 AND id = $3"
        )))
        .bind(self.tenant.as_str())
        .bind(customer_id)
        .bind(id)
        .fetch_optional(self.db.get().await?)
        .await
        .map_err(db)
    }

    /// Deletes a phone of a portador; whether it existed.
    pub async fn delete_phone(&mut self, customer_id: i64, id: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "DELETE FROM portador_phones WHERE tenant = $1 AND customer_id = $2 AND id = $3",
        )
        .bind(self.tenant.as_str())
        .bind(customer_id)
        .bind(id)
        .execute(self.db.get().await?)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    /// Sets a phone's pending confirmation code (hash, expiry) and clears its tries.
    pub async fn set_phone_code(
        &mut self,
        id: i64,
        code_hash: &str,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE portador_phones SET code_hash = $1, code_expires_ms = $2, code_failures = 0 WHERE tenant = $3 AND id = $4")
            .bind(code_hash)
            .bind(expires_ms)
            .bind(self.tenant.as_str())
            .bind(id)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Counts a wrong code; at `limit` wrong tries the code is void. Returns the tries.
    pub async fn phone_code_failed(&mut self, id: i64, limit: i64) -> Result<i64, StoreError> {
        sqlx::query("UPDATE portador_phones SET code_failures = code_failures + 1 WHERE tenant = $1 AND id = $2")
            .bind(self.tenant.as_str())
            .bind(id)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        sqlx::query("UPDATE portador_phones SET code_hash = '', code_expires_ms = 0 WHERE tenant = $1 AND id = $2 AND code_failures >= $3")
            .bind(self.tenant.as_str())
            .bind(id)
            .bind(limit)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        sqlx::query_scalar(
            "SELECT code_failures FROM portador_phones WHERE tenant = $1 AND id = $2",
        )
        .bind(self.tenant.as_str())
        .bind(id)
        .fetch_one(self.db.get().await?)
        .await
        .map_err(db)
    }

    /// Marks a phone confirmed for SMS and voids its code.
    pub async fn confirm_phone(&mut self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE portador_phones SET sms_confirmed = 1, code_hash = '', code_expires_ms = 0, code_failures = 0 WHERE tenant = $1 AND id = $2")
            .bind(self.tenant.as_str())
            .bind(id)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Queues an SMS in the outbox (the default gateway).
    pub async fn queue_sms(
        &mut self,
        customer_id: i64,
        phone: &str,
        payload: &[u8],
    ) -> Result<i64, StoreError> {
        let id = new_id();
        sqlx::query("INSERT INTO sms_outbox (id, tenant, customer_id, phone, payload_hex, created_ms) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .bind(phone)
            .bind(hex::encode_upper(payload))
            .bind(now_ms())
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(id)
    }
}
