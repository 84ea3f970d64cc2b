//! Account records: creation for a customer of the tenant, lookup, the accounts of a
//! customer, and changes inside the writer's transaction with their history row.

use crate::api::domain::IntoRecordId;

use super::{Account, Records, StoreError, db, now_ms};

const COLUMNS: &str = "id, customer_id, product, credit_limit, cycle_day, body, status, tenant";

impl Records<'_> {
    /// Creates account `a.id` for customer `a.customer_id` (which must be this tenant's);
    /// the number must be new in this tenant.
    pub async fn create_account(&mut self, a: &Account) -> Result<Account, StoreError> {
        self.customer(a.customer_id).await?;
        if !(1..=31).contains(&a.cycle_day) {
            return Err(StoreError::Rule("billing cycle day must be 1-31".into()));
        }
        let mut a = a.clone();
        a.tenant = self.t();
        let now = now_ms();
        sqlx::query("INSERT INTO accounts (tenant, id, customer_id, product, credit_limit, cycle_day, body, status, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(self.tenant.as_str())
            .bind(a.id)
            .bind(a.customer_id)
            .bind(a.product.as_str())
            .bind(a.credit_limit)
            .bind(a.cycle_day)
            .bind(a.body.to_string())
            .bind(a.status.as_str())
            .bind(now)
            .bind(now)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        let after = serde_json::to_value(&a).map_err(|e| StoreError::Database(e.to_string()))?;
        self.history("account", a.id, "create", None, Some(&after))
            .await?;
        Ok(a)
    }

    /// An account by number, if this tenant has it (through the read cache when there
    /// is one).
    pub async fn find_account(
        &mut self,
        id: impl IntoRecordId,
    ) -> Result<Option<Account>, StoreError> {
        let id = id.record_id();
        let snapshot = self.cache.as_ref().map(|c| c.snapshot());
        if let (Some(cache), Some(s)) = (&self.cache, snapshot)
            && let Some(a) = cache.account(s, self.tenant.as_str(), id)
        {
            return Ok(Some(a));
        }
        let account: Option<Account> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM accounts WHERE tenant = $1 AND id = $2"
        )))
        .bind(self.tenant.as_str())
        .bind(id)
        .fetch_optional(self.db.get().await?)
        .await
        .map_err(db)?;
        if let (Some(a), Some(cache), Some(s)) = (&account, &self.cache, snapshot) {
            cache.keep_account(s, a);
        }
        Ok(account)
    }

    /// An account by number (`NotFound("account")`).
    pub async fn account(&mut self, id: impl IntoRecordId) -> Result<Account, StoreError> {
        let id = id.record_id();
        self.find_account(id)
            .await?
            .ok_or(StoreError::NotFound("account"))
    }

    /// The accounts of a customer, oldest first.
    pub async fn accounts_of(
        &mut self,
        customer_id: impl IntoRecordId,
    ) -> Result<Vec<Account>, StoreError> {
        let customer_id = customer_id.record_id();
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM accounts WHERE tenant = $1 AND customer_id = $2 ORDER BY created_ms, id"
        )))
        .bind(self.tenant.as_str())
        .bind(customer_id)
        .fetch_all(self.db.get().await?)
        .await
        .map_err(db)
    }

    /// Reads account `id` (row-locked on PostgreSQL), applies `change`, writes it back
    /// with its history row.
    pub async fn update_account(
        &mut self,
        id: impl IntoRecordId,
        action: &str,
        change: impl FnOnce(&mut Account),
    ) -> Result<Account, StoreError> {
        let id = id.record_id();
        let before: Account = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM accounts WHERE tenant = $1 AND id = $2{}",
            self.dialect.for_update()
        )))
        .bind(self.tenant.as_str())
        .bind(id)
        .fetch_optional(self.db.get().await?)
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound("account"))?;
        let mut after = before.clone();
        change(&mut after);
        after.id = before.id;
        after.customer_id = before.customer_id;
        after.tenant.clone_from(&before.tenant);
        sqlx::query("UPDATE accounts SET product = $1, credit_limit = $2, cycle_day = $3, body = $4, status = $5, updated_ms = $6 WHERE tenant = $7 AND id = $8")
            .bind(after.product.as_str())
            .bind(after.credit_limit)
            .bind(after.cycle_day)
            .bind(after.body.to_string())
            .bind(after.status.as_str())
            .bind(now_ms())
            .bind(self.tenant.as_str())
            .bind(id)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        let to_json =
            |a: &Account| serde_json::to_value(a).map_err(|e| StoreError::Database(e.to_string()));
        let (b, a) = (to_json(&before)?, to_json(&after)?);
        self.history("account", id, action, Some(&b), Some(&a))
            .await?;
        Ok(after)
    }
}
