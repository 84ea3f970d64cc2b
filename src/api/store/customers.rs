//! Customer records: creation (with a chosen or a random number), lookup by number or
//! document, and changes with their history row.

use sqlx::Row;

use super::{Customer, Store, StoreError, db, json, new_id, now_ms};

impl Store {
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
}
