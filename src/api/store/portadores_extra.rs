//! Store methods of the cardholder API's blocks, dependents, phones and history (tables of `migrations/0007`): block
//! types, occurrences, delinquencies, dependents, phones and their SMS confirmation
//! codes, the SMS outbox, reference tables, and the paginated history of a portador.
//! Nothing here holds a clear PAN, PIN or key; confirmation codes are kept as hashes.

use serde::Serialize;
use sqlx::Row;

use super::{HistoryRow, Store, StoreError, db, json, new_id, now_ms};

/// A row of a code table (block types, education, occupations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    pub wants_sms: bool,
    /// Digital invoice by SMS.
    pub digital_invoice: bool,
    /// Confirmed for SMS with a one-time code.
    pub sms_confirmed: bool,
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

const PHONE_COLUMNS: &str = "id, customer_id, kind, area, number, extension, wants_sms, digital_invoice, sms_confirmed, code_hash, code_expires_ms, code_failures";

fn phone_from_row(r: &sqlx::any::AnyRow) -> Result<Phone, StoreError> {
    Ok(Phone {
        id: r.try_get(0).map_err(db)?,
        customer_id: r.try_get(1).map_err(db)?,
        kind: r.try_get(2).map_err(db)?,
        area: r.try_get(3).map_err(db)?,
        number: r.try_get(4).map_err(db)?,
        extension: r.try_get(5).map_err(db)?,
        wants_sms: r.try_get::<i64, _>(6).map_err(db)? != 0,
        digital_invoice: r.try_get::<i64, _>(7).map_err(db)? != 0,
        sms_confirmed: r.try_get::<i64, _>(8).map_err(db)? != 0,
        code_hash: r.try_get(9).map_err(db)?,
        code_expires_ms: r.try_get(10).map_err(db)?,
        code_failures: r.try_get(11).map_err(db)?,
    })
}

impl Store {
    /// The block types, by id.
    pub async fn block_types(&self) -> Result<Vec<CodeRow>, StoreError> {
        self.code_table(CodeTable::BlockTypes).await
    }

    /// The education levels, by id.
    pub async fn education_levels(&self) -> Result<Vec<CodeRow>, StoreError> {
        self.code_table(CodeTable::Education).await
    }

    /// The occupations, by id.
    pub async fn occupations(&self) -> Result<Vec<CodeRow>, StoreError> {
        self.code_table(CodeTable::Occupations).await
    }

    async fn code_table(&self, table: CodeTable) -> Result<Vec<CodeRow>, StoreError> {
        let sql = format!(
            "SELECT id, code, description FROM {} ORDER BY id",
            table.name()
        );
        sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                Ok(CodeRow {
                    id: r.try_get(0).map_err(db)?,
                    code: r.try_get(1).map_err(db)?,
                    description: r.try_get(2).map_err(db)?,
                })
            })
            .collect()
    }

    /// Records an occurrence for a portador (refusals, blocks, ...). Callers outside
    /// the portadores API (the processor-side PIN and CVV checks) use it too. `detail`
    /// must never carry a PAN, PIN, PIN block, CVV or key.
    pub async fn record_occurrence(
        &self,
        customer_id: i64,
        kind: &str,
        detail: &str,
        actor: &str,
    ) -> Result<i64, StoreError> {
        let id = new_id();
        sqlx::query("INSERT INTO portador_occurrences (id, customer_id, kind, detail, actor, at_ms) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(customer_id)
            .bind(kind)
            .bind(detail)
            .bind(actor)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(id)
    }

    /// A portador's occurrences with `from_ms <= at_ms < to_ms`, oldest first.
    pub async fn occurrences(
        &self,
        customer_id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Occurrence>, StoreError> {
        sqlx::query("SELECT id, customer_id, kind, detail, actor, at_ms FROM portador_occurrences WHERE customer_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms, id")
            .bind(customer_id)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                Ok(Occurrence {
                    id: r.try_get(0).map_err(db)?,
                    customer_id: r.try_get(1).map_err(db)?,
                    kind: r.try_get(2).map_err(db)?,
                    detail: r.try_get(3).map_err(db)?,
                    actor: r.try_get(4).map_err(db)?,
                    at_ms: r.try_get(5).map_err(db)?,
                })
            })
            .collect()
    }

    /// A portador's delinquency periods, newest first.
    pub async fn delinquencies(&self, customer_id: i64) -> Result<Vec<Delinquency>, StoreError> {
        sqlx::query("SELECT id, account_id, started_ms, ended_ms, days_late, amount, detail FROM portador_delinquencies WHERE customer_id = $1 ORDER BY started_ms DESC, id")
            .bind(customer_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                Ok(Delinquency {
                    id: r.try_get(0).map_err(db)?,
                    account_id: r.try_get(1).map_err(db)?,
                    started_ms: r.try_get(2).map_err(db)?,
                    ended_ms: r.try_get(3).map_err(db)?,
                    days_late: r.try_get(4).map_err(db)?,
                    amount: r.try_get(5).map_err(db)?,
                    detail: r.try_get(6).map_err(db)?,
                })
            })
            .collect()
    }

    /// Links a dependent (customer) to its holder and its card.
    pub async fn link_dependent(
        &self,
        dependent_id: i64,
        holder_id: i64,
        account_id: i64,
        card_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO portador_dependents (dependent_id, holder_id, account_id, card_id, created_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(dependent_id)
            .bind(holder_id)
            .bind(account_id)
            .bind(card_id)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// A holder's dependents, oldest first.
    pub async fn dependents_of(&self, holder_id: i64) -> Result<Vec<DependentLink>, StoreError> {
        sqlx::query("SELECT dependent_id, holder_id, account_id, card_id FROM portador_dependents WHERE holder_id = $1 ORDER BY created_ms, dependent_id")
            .bind(holder_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                Ok(DependentLink {
                    dependent_id: r.try_get(0).map_err(db)?,
                    holder_id: r.try_get(1).map_err(db)?,
                    account_id: r.try_get(2).map_err(db)?,
                    card_id: r.try_get(3).map_err(db)?,
                })
            })
            .collect()
    }

    /// Adds a phone to a portador.
    /// `kind`, `area`, `number`, `extension` are checked by the caller; `flags` are
    /// (wants SMS, digital invoice).
    pub async fn add_phone(
        &self,
        customer_id: i64,
        fields: [&str; 4],
        flags: (bool, bool),
    ) -> Result<Phone, StoreError> {
        let [kind, area, number, extension] = fields;
        let id = new_id();
        sqlx::query("INSERT INTO portador_phones (id, customer_id, kind, area, number, extension, wants_sms, digital_invoice, sms_confirmed, code_hash, code_expires_ms, code_failures, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, '', 0, 0, $9)")
            .bind(id)
            .bind(customer_id)
            .bind(kind)
            .bind(area)
            .bind(number)
            .bind(extension)
            .bind(i64::from(flags.0))
            .bind(i64::from(flags.1))
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        self.phone(customer_id, id)
            .await?
            .ok_or(StoreError::NotFound("phone"))
    }

    /// A portador's phones, oldest first.
    pub async fn phones_of(&self, customer_id: i64) -> Result<Vec<Phone>, StoreError> {
        sqlx::query(&format!(
            "SELECT {PHONE_COLUMNS} FROM portador_phones WHERE customer_id = $1 ORDER BY created_ms, id"
        ))
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(phone_from_row)
        .collect()
    }

    /// A phone of a portador (another portador's phone is `None`).
    pub async fn phone(&self, customer_id: i64, id: i64) -> Result<Option<Phone>, StoreError> {
        sqlx::query(&format!(
            "SELECT {PHONE_COLUMNS} FROM portador_phones WHERE customer_id = $1 AND id = $2"
        ))
        .bind(customer_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(phone_from_row)
        .transpose()
    }

    /// Deletes a phone of a portador; whether it existed.
    pub async fn delete_phone(&self, customer_id: i64, id: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM portador_phones WHERE customer_id = $1 AND id = $2")
            .bind(customer_id)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    /// Sets a phone's pending confirmation code (hash, expiry) and clears its tries.
    pub async fn set_phone_code(
        &self,
        id: i64,
        code_hash: &str,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE portador_phones SET code_hash = $1, code_expires_ms = $2, code_failures = 0 WHERE id = $3")
            .bind(code_hash)
            .bind(expires_ms)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Counts a wrong code; at `limit` wrong tries the code is void. Returns the tries.
    pub async fn phone_code_failed(&self, id: i64, limit: i64) -> Result<i64, StoreError> {
        sqlx::query("UPDATE portador_phones SET code_failures = code_failures + 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        sqlx::query("UPDATE portador_phones SET code_hash = '', code_expires_ms = 0 WHERE id = $1 AND code_failures >= $2")
            .bind(id)
            .bind(limit)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        sqlx::query("SELECT code_failures FROM portador_phones WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)
    }

    /// Marks a phone confirmed for SMS and voids its code.
    pub async fn confirm_phone(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE portador_phones SET sms_confirmed = 1, code_hash = '', code_expires_ms = 0, code_failures = 0 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Queues an SMS in the outbox (the default gateway).
    pub async fn queue_sms(
        &self,
        customer_id: i64,
        phone: &str,
        payload: &[u8],
    ) -> Result<i64, StoreError> {
        let id = new_id();
        sqlx::query("INSERT INTO sms_outbox (id, customer_id, phone, payload_hex, created_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(customer_id)
            .bind(phone)
            .bind(hex::encode_upper(payload))
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(id)
    }

    /// The history rows of a portador's customer record and of its accounts and cards
    /// (`entities`: (entity, id) pairs), newest first, `limit` rows after the cursor
    /// `(at_ms, id)` (exclusive). Each row comes with its id (the next cursor).
    pub async fn history_page(
        &self,
        entities: &[(&str, i64)],
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<(i64, HistoryRow)>, StoreError> {
        if entities.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = String::from(
            "SELECT id, entity, entity_id, actor, action, at_ms, before_json, after_json FROM history WHERE (",
        );
        let mut n = 0;
        for i in 0..entities.len() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            sql.push_str(&format!("(entity = ${} AND entity_id = ${})", n + 1, n + 2));
            n += 2;
        }
        sql.push(')');
        if after.is_some() {
            sql.push_str(&format!(
                " AND (at_ms < ${} OR (at_ms = ${} AND id < ${}))",
                n + 1,
                n + 1,
                n + 2
            ));
            n += 2;
        }
        sql.push_str(&format!(" ORDER BY at_ms DESC, id DESC LIMIT ${}", n + 1));
        let mut q = sqlx::query(&sql);
        for (entity, id) in entities {
            q = q.bind((*entity).to_owned()).bind(*id);
        }
        if let Some((at, id)) = after {
            q = q.bind(at).bind(id);
        }
        q = q.bind(limit);
        q.fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(db)?,
                    HistoryRow {
                        entity: r.try_get(1).map_err(db)?,
                        entity_id: r.try_get(2).map_err(db)?,
                        actor: r.try_get(3).map_err(db)?,
                        action: r.try_get(4).map_err(db)?,
                        at_ms: r.try_get(5).map_err(db)?,
                        before: r
                            .try_get::<Option<String>, _>(6)
                            .map_err(db)?
                            .as_deref()
                            .map(json),
                        after: r
                            .try_get::<Option<String>, _>(7)
                            .map_err(db)?
                            .as_deref()
                            .map(json),
                    },
                ))
            })
            .collect()
    }
}
