//! The append-only history: one row per change (who, what, when, the non-secret fields
//! before and after), written in the transaction of the change.

use sqlx::AnyConnection;

use super::{BoxFuture, Dialect, HistoryRow, OpOutcome, Records, StoreError, db, new_id, now_ms};
use crate::api::domain::Tenant;

/// An operation that only appends rows ([`Writer::call_appending`](super::Writer::call_appending)).
pub type AppendOp = Box<dyn for<'c> FnOnce(AppendOnly<'c>) -> BoxFuture<'c, OpOutcome> + Send>;

/// The writer's transaction as an [`AppendOp`] gets it: usable only through
/// [`Appends`], which inserts history and occurrence rows and changes no
/// card, account or customer (so the read cache stays true).
pub struct AppendOnly<'c>(pub(super) &'c mut AnyConnection);

impl<'c> AppendOnly<'c> {
    /// Wraps a transaction that is not the writer's batch (a system call's own write,
    /// which empties the cache anyway).
    pub fn new(db: &'c mut AnyConnection) -> Self {
        Self(db)
    }
}

impl std::fmt::Debug for AppendOnly<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppendOnly")
    }
}

/// A tenant's records as an [`AppendOp`] reaches them: appending a card's history row
/// and a cardholder occurrence, reading nothing from the cache and changing no record.
#[derive(Debug)]
pub struct Appends<'c>(Records<'c>);

impl<'c> Appends<'c> {
    /// `tenant`'s records over `db`, rows appended by `actor`.
    pub fn new(db: AppendOnly<'c>, dialect: Dialect, tenant: Tenant, actor: &str) -> Self {
        Self(Records::new(db.0, dialect, tenant, actor))
    }

    /// [`Records::card_event`].
    pub async fn card_event(
        &mut self,
        id: i64,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.0.card_event(id, action, detail).await
    }

    /// [`Records::record_occurrence`].
    pub async fn record_occurrence(
        &mut self,
        customer_id: i64,
        kind: &str,
        detail: &str,
    ) -> Result<i64, StoreError> {
        self.0.record_occurrence(customer_id, kind, detail).await
    }
}

impl Records<'_> {
    /// Appends a history row for `entity` `id` of this tenant.
    pub async fn history(
        &mut self,
        entity: &str,
        id: i64,
        action: &str,
        before: Option<&serde_json::Value>,
        after: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO history (id, tenant, entity, entity_id, actor, action, at_ms, before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(new_id())
            .bind(self.tenant.as_str())
            .bind(entity)
            .bind(id)
            .bind(&*self.actor)
            .bind(action)
            .bind(now_ms())
            .bind(before.map(ToString::to_string))
            .bind(after.map(ToString::to_string))
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// The history of a record, oldest first.
    pub async fn history_of(
        &mut self,
        entity: &str,
        id: i64,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        sqlx::query_as("SELECT id, entity, entity_id, actor, action, at_ms, before_json, after_json FROM history WHERE tenant = $1 AND entity = $2 AND entity_id = $3 ORDER BY at_ms, id")
            .bind(self.tenant.as_str())
            .bind(entity)
            .bind(id)
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }

    /// The history rows of several records (`entities`: (entity, id) pairs), newest
    /// first, `limit` rows after the cursor `(at_ms, id)` (exclusive).
    pub async fn history_page(
        &mut self,
        entities: &[(&str, i64)],
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        if entities.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = String::from(
            "SELECT id, entity, entity_id, actor, action, at_ms, before_json, after_json FROM history WHERE tenant = $1 AND (",
        );
        let mut n = 1;
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
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(self.tenant.as_str());
        for (entity, id) in entities {
            q = q.bind(*entity).bind(*id);
        }
        if let Some((at, id)) = after {
            q = q.bind(at).bind(id);
        }
        q.bind(limit)
            .fetch_all(self.db.get().await?)
            .await
            .map_err(db)
    }
}
