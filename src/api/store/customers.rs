//! Customer records: creation (number and document unique per tenant), lookup by number
//! or document, and changes read and written inside the writer's transaction with their
//! history row.

use crate::api::domain::IntoRecordId;

use super::{Body, Customer, Records, StoreError, db, now_ms};

const COLUMNS: &str = "id, document, name, body, status, tenant";

impl Records<'_> {
    /// Creates a customer with number `id`; number and document must be new in this
    /// tenant (`Conflict`).
    pub async fn create_customer(
        &mut self,
        id: i64,
        document: &str,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<Customer, StoreError> {
        let c = Customer {
            id,
            document: document.to_owned(),
            name: name.to_owned(),
            body: Body(body.clone()),
            status: "active".into(),
            tenant: self.t(),
        };
        let now = now_ms();
        sqlx::query("INSERT INTO customers (tenant, id, document, name, body, status, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(self.tenant.as_str())
            .bind(c.id)
            .bind(c.document.as_str())
            .bind(c.name.as_str())
            .bind(c.body.to_string())
            .bind(c.status.as_str())
            .bind(now)
            .bind(now)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        let after = serde_json::to_value(&c).map_err(|e| StoreError::Database(e.to_string()))?;
        self.history("customer", c.id, "create", None, Some(&after))
            .await?;
        Ok(c)
    }

    /// A customer by number, if this tenant has it.
    pub async fn find_customer(
        &mut self,
        id: impl IntoRecordId,
    ) -> Result<Option<Customer>, StoreError> {
        let id = id.record_id();
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM customers WHERE tenant = $1 AND id = $2"
        )))
        .bind(self.tenant.as_str())
        .bind(id)
        .fetch_optional(self.db.get().await?)
        .await
        .map_err(db)
    }

    /// A customer by number (`NotFound("customer")`).
    pub async fn customer(&mut self, id: impl IntoRecordId) -> Result<Customer, StoreError> {
        let id = id.record_id();
        self.find_customer(id)
            .await?
            .ok_or(StoreError::NotFound("customer"))
    }

    /// A customer by document.
    pub async fn customer_by_document(
        &mut self,
        document: &str,
    ) -> Result<Option<Customer>, StoreError> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM customers WHERE tenant = $1 AND document = $2"
        )))
        .bind(self.tenant.as_str())
        .bind(document)
        .fetch_optional(self.db.get().await?)
        .await
        .map_err(db)
    }

    /// Reads customer `id` (row-locked on PostgreSQL), applies `change`, writes it back
    /// and appends the history row with the before read here.
    pub async fn update_customer(
        &mut self,
        id: impl IntoRecordId,
        action: &str,
        change: impl FnOnce(&mut Customer),
    ) -> Result<Customer, StoreError> {
        let id = id.record_id();
        let before: Customer = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM customers WHERE tenant = $1 AND id = $2{}",
            self.dialect.for_update()
        )))
        .bind(self.tenant.as_str())
        .bind(id)
        .fetch_optional(self.db.get().await?)
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound("customer"))?;
        let mut after = before.clone();
        change(&mut after);
        after.id = before.id;
        after.tenant.clone_from(&before.tenant);
        sqlx::query("UPDATE customers SET document = $1, name = $2, body = $3, status = $4, updated_ms = $5 WHERE tenant = $6 AND id = $7")
            .bind(after.document.as_str())
            .bind(after.name.as_str())
            .bind(after.body.to_string())
            .bind(after.status.as_str())
            .bind(now_ms())
            .bind(self.tenant.as_str())
            .bind(id)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        let to_json =
            |c: &Customer| serde_json::to_value(c).map_err(|e| StoreError::Database(e.to_string()));
        let (b, a) = (to_json(&before)?, to_json(&after)?);
        self.history("customer", id, action, Some(&b), Some(&a))
            .await?;
        Ok(after)
    }
}
