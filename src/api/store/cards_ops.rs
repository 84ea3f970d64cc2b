//! Store methods of the card operations (`api::card_ops`): history rows for events that
//! change no column (a refused PIN validation), so that every refusal leaves a trace.

use super::{Store, StoreError, db};

impl Store {
    /// Appends a history row `action` for card `id` with `detail` (non-secret: a reason
    /// code, a channel) as its `after` value; the card's columns are not touched. An
    /// unknown card is `NotFound`.
    pub async fn card_event(
        &self,
        actor: &str,
        id: i64,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.card(id).await?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        Self::history(&mut tx, "card", id, actor, action, None, Some(detail)).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}
