//! Store methods of the cardholder API's own tables (`migrations/0004_portadores.sql`):
//! the portador index (tenant, document, RG, folded name) and the limit history.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, db, new_id, now_ms};

/// One row of the limit history.
#[derive(Debug, Clone, Serialize)]
pub struct LimitChange {
    /// Account.
    pub account_id: i64,
    /// Who.
    pub actor: String,
    /// Which limit (`limiteRotativo`, `limiteParcelado`, `limiteSaque`).
    pub kind: String,
    /// Before, centavos.
    pub before_cents: i64,
    /// After, centavos.
    pub after_cents: i64,
    /// When, epoch ms.
    pub at_ms: i64,
}

impl Store {
    /// Indexes a portador (insert or replace).
    pub async fn index_portador(
        &self,
        customer_id: i64,
        tenant: &str,
        tipo: &str,
        documento: &str,
        rg: &str,
        nome_busca: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM portador_index WHERE customer_id = $1")
            .bind(customer_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO portador_index (customer_id, tenant, tipo, documento, rg, nome_busca, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(customer_id)
            .bind(tenant)
            .bind(tipo)
            .bind(documento)
            .bind(rg)
            .bind(nome_busca)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn index_ids(
        &self,
        sql: &str,
        tenant: &str,
        value: &str,
    ) -> Result<Vec<i64>, StoreError> {
        sqlx::query(sql)
            .bind(tenant)
            .bind(value)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(db))
            .collect()
    }

    /// A tenant's portadores with this document (CPF or CNPJ), oldest first.
    pub async fn portadores_by_document(
        &self,
        tenant: &str,
        documento: &str,
    ) -> Result<Vec<i64>, StoreError> {
        self.index_ids(
            "SELECT customer_id FROM portador_index WHERE tenant = $1 AND documento = $2 ORDER BY customer_id",
            tenant,
            documento,
        )
        .await
    }

    /// A tenant's portadores with this RG.
    pub async fn portadores_by_rg(&self, tenant: &str, rg: &str) -> Result<Vec<i64>, StoreError> {
        self.index_ids(
            "SELECT customer_id FROM portador_index WHERE tenant = $1 AND rg = $2 ORDER BY customer_id",
            tenant,
            rg,
        )
        .await
    }

    /// A page of a tenant's portadores whose folded name contains `folded` (no `%` or
    /// `_` in it: the caller strips them), after `cursor`, at most `limit`.
    pub async fn portadores_by_name(
        &self,
        tenant: &str,
        folded: &str,
        cursor: i64,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        sqlx::query("SELECT customer_id FROM portador_index WHERE tenant = $1 AND nome_busca LIKE $2 AND customer_id > $3 ORDER BY customer_id LIMIT $4")
            .bind(tenant)
            .bind(format!("%{folded}%"))
            .bind(cursor)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(db))
            .collect()
    }

    /// Records a limit change.
    pub async fn record_limit_change(
        &self,
        customer_id: i64,
        account_id: i64,
        actor: &str,
        kind: &str,
        before_cents: i64,
        after_cents: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO portador_limit_history (id, customer_id, account_id, actor, kind, before_cents, after_cents, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(new_id())
            .bind(customer_id)
            .bind(account_id)
            .bind(actor)
            .bind(kind)
            .bind(before_cents)
            .bind(after_cents)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// A portador's limit history, oldest first.
    pub async fn limit_history(&self, customer_id: i64) -> Result<Vec<LimitChange>, StoreError> {
        sqlx::query("SELECT account_id, actor, kind, before_cents, after_cents, at_ms FROM portador_limit_history WHERE customer_id = $1 ORDER BY at_ms, id")
            .bind(customer_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                Ok(LimitChange {
                    account_id: r.try_get(0).map_err(db)?,
                    actor: r.try_get(1).map_err(db)?,
                    kind: r.try_get(2).map_err(db)?,
                    before_cents: r.try_get(3).map_err(db)?,
                    after_cents: r.try_get(4).map_err(db)?,
                    at_ms: r.try_get(5).map_err(db)?,
                })
            })
            .collect()
    }
}
