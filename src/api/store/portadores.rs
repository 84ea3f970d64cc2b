//! The cardholder API's own tables (`migrations/0004_portadores.sql`): the portador
//! index (document, RG, folded name; per tenant) and the limit history.

use serde::Serialize;
use sqlx::FromRow;

use super::{Records, StoreError, db, new_id, now_ms};

/// One row of the limit history.
#[derive(Debug, Clone, Serialize, FromRow)]
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

impl Records<'_> {
    /// Indexes a portador of this tenant (insert or replace).
    pub async fn index_portador(
        &mut self,
        customer_id: i64,
        tipo: &str,
        documento: &str,
        rg: &str,
        nome_busca: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM portador_index WHERE tenant = $1 AND customer_id = $2")
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO portador_index (tenant, customer_id, tipo, documento, rg, nome_busca, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .bind(tipo)
            .bind(documento)
            .bind(rg)
            .bind(nome_busca)
            .bind(now_ms())
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// This tenant's portadores with this document (CPF or CNPJ).
    pub async fn portadores_by_document(
        &mut self,
        documento: &str,
    ) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar("SELECT customer_id FROM portador_index WHERE tenant = $1 AND documento = $2 ORDER BY customer_id")
            .bind(self.tenant.as_str())
            .bind(documento)
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// This tenant's portadores with this RG.
    pub async fn portadores_by_rg(&mut self, rg: &str) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar("SELECT customer_id FROM portador_index WHERE tenant = $1 AND rg = $2 ORDER BY customer_id")
            .bind(self.tenant.as_str())
            .bind(rg)
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// A page of this tenant's portadores whose folded name contains `folded` (no `%`
    /// or `_` in it: the caller strips them), after `cursor`, at most `limit`.
    pub async fn portadores_by_name(
        &mut self,
        folded: &str,
        cursor: i64,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar("SELECT customer_id FROM portador_index WHERE tenant = $1 AND nome_busca LIKE $2 AND customer_id > $3 ORDER BY customer_id LIMIT $4")
            .bind(self.tenant.as_str())
            .bind(format!("%{folded}%"))
            .bind(cursor)
            .bind(limit)
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// Records a limit change.
    pub async fn record_limit_change(
        &mut self,
        customer_id: i64,
        account_id: i64,
        kind: &str,
        before_cents: i64,
        after_cents: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO portador_limit_history (id, tenant, customer_id, account_id, actor, kind, before_cents, after_cents, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(new_id())
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .bind(account_id)
            .bind(&*self.actor)
            .bind(kind)
            .bind(before_cents)
            .bind(after_cents)
            .bind(now_ms())
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// A portador's limit history, oldest first.
    pub async fn limit_history(
        &mut self,
        customer_id: i64,
    ) -> Result<Vec<LimitChange>, StoreError> {
        sqlx::query_as("SELECT account_id, actor, kind, before_cents, after_cents, at_ms FROM portador_limit_history WHERE tenant = $1 AND customer_id = $2 ORDER BY at_ms, id")
            .bind(self.tenant.as_str())
            .bind(customer_id)
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }
}
