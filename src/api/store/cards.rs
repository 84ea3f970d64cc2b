//! Card records: creation, lookup by id, PAN token, lookup token or account, and the
//! one update path that writes every mutable column with its history row. Also the row
//! mapping and the history view of a card, which leaves the PIN blob out.

use sqlx::Row;

use super::{Card, NewCard, Store, StoreError, db, issuing, json, now_ms};

impl Store {
    /// Creates an inactive card record on an account of the customer.
    pub async fn create_card(&self, actor: &str, new: NewCard) -> Result<Card, StoreError> {
        let account = self.account(new.account_id).await?;
        if account.customer_id != new.customer_id {
            return Err(StoreError::Rule(
                "the account does not belong to the customer".into(),
            ));
        }
        let c = issuing::card_of(new, "inactive");
        let mut tx = self.pool.begin().await.map_err(db)?;
        issuing::insert_card(&mut tx, &c).await?;
        Self::history(
            &mut tx,
            "card",
            c.id,
            actor,
            "create",
            None,
            Some(&card_public(&c)),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(c)
    }

    /// A card by record id.
    pub async fn card(&self, id: i64) -> Result<Card, StoreError> {
        self.card_where("id = $1", CardKey::Id(id))
            .await?
            .ok_or(StoreError::NotFound("card"))
    }

    /// A card by PAN token.
    pub async fn card_by_token(&self, token: &str) -> Result<Option<Card>, StoreError> {
        self.card_where("token = $1", CardKey::Text(token)).await
    }

    /// A card by lookup token (the HMAC of its PAN).
    pub async fn card_by_lookup(&self, lookup_token: &str) -> Result<Option<Card>, StoreError> {
        self.card_where("lookup_token = $1", CardKey::Text(lookup_token))
            .await
    }

    /// The cards of an account, oldest first.
    pub async fn cards_of_account(&self, account_id: i64) -> Result<Vec<Card>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE account_id = $1 ORDER BY created_ms, id"
        ))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(card_from_row).collect()
    }

    pub(super) async fn card_where(
        &self,
        condition: &str,
        key: CardKey<'_>,
    ) -> Result<Option<Card>, StoreError> {
        let sql = format!("SELECT {CARD_COLUMNS} FROM cards WHERE {condition}");
        let q = sqlx::query(&sql);
        let q = match key {
            CardKey::Id(id) => q.bind(id),
            CardKey::Text(t) => q.bind(t.to_owned()),
        };
        q.fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(card_from_row)
            .transpose()
    }

    /// Applies `change` to a card and writes every mutable column, with a history row
    /// (`action`, before/after of the non-secret fields), in one transaction.
    pub async fn update_card(
        &self,
        actor: &str,
        id: i64,
        action: &str,
        change: impl FnOnce(&mut Card),
    ) -> Result<Card, StoreError> {
        let before = self.card(id).await?;
        let mut after = before.clone();
        change(&mut after);
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE cards SET status = $1, body = $2, pin_status = $3, block_code = $4, credit_limit = $5, replaced_by = $6, dcvv2 = $7, pvv = $8, pin_blob = $9, expiry = $10, updated_ms = $11 WHERE id = $12")
            .bind(&after.status)
            .bind(after.body.to_string())
            .bind(&after.pin_status)
            .bind(&after.block_code)
            .bind(after.credit_limit)
            .bind(after.replaced_by)
            .bind(&after.dcvv2)
            .bind(&after.pvv)
            .bind(&after.pin_blob)
            .bind(&after.expiry)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        Self::history(
            &mut tx,
            "card",
            id,
            actor,
            action,
            Some(&card_public(&before)),
            Some(&card_public(&after)),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(after)
    }

    /// Changes a card's status (activation, block, ...), with history.
    pub async fn set_card_status(
        &self,
        actor: &str,
        id: i64,
        status: &str,
    ) -> Result<Card, StoreError> {
        self.update_card(actor, id, "status", |c| c.status = status.to_owned())
            .await
    }
}

const CARD_COLUMNS: &str = "id, account_id, customer_id, token, token_version, lookup_token, masked_pan, kind, expiry, service_code, pvv, pin_blob, status, body, pin_status, block_code, credit_limit, replaced_by, dcvv2, tenant";

pub(super) enum CardKey<'a> {
    Id(i64),
    Text(&'a str),
}

fn card_from_row(row: &sqlx::any::AnyRow) -> Result<Card, StoreError> {
    Ok(Card {
        id: row.try_get(0).map_err(db)?,
        account_id: row.try_get(1).map_err(db)?,
        customer_id: row.try_get(2).map_err(db)?,
        token: row.try_get(3).map_err(db)?,
        token_version: row.try_get(4).map_err(db)?,
        lookup_token: row.try_get(5).map_err(db)?,
        masked_pan: row.try_get(6).map_err(db)?,
        kind: row.try_get(7).map_err(db)?,
        expiry: row.try_get(8).map_err(db)?,
        service_code: row.try_get(9).map_err(db)?,
        pvv: row.try_get(10).map_err(db)?,
        pin_blob: row.try_get(11).map_err(db)?,
        status: row.try_get(12).map_err(db)?,
        body: json(&row.try_get::<String, _>(13).map_err(db)?),
        pin_status: row.try_get(14).map_err(db)?,
        block_code: row.try_get(15).map_err(db)?,
        credit_limit: row.try_get(16).map_err(db)?,
        replaced_by: row.try_get(17).map_err(db)?,
        dcvv2: row.try_get(18).map_err(db)?,
        tenant: row.try_get(19).map_err(db)?,
    })
}

/// The history view of a card: everything but the PIN blob (opaque, but no reason to
/// copy it around).
pub(super) fn card_public(c: &Card) -> serde_json::Value {
    serde_json::json!({
        "id": c.id, "account_id": c.account_id, "customer_id": c.customer_id,
        "token": c.token, "masked_pan": c.masked_pan, "kind": c.kind, "expiry": c.expiry,
        "service_code": c.service_code, "status": c.status, "pin_status": c.pin_status,
        "block_code": c.block_code, "credit_limit": c.credit_limit,
        "replaced_by": c.replaced_by, "dcvv2": c.dcvv2, "tenant": c.tenant,
    })
}
