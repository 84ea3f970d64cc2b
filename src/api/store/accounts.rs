//! Account records: creation for an existing customer, lookup, the accounts of a
//! customer, and changes with their history row.

use sqlx::Row;

use super::{Account, Store, StoreError, db, issuing, json, new_id, now_ms};

impl Store {
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
}
