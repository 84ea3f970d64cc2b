//! Card records: creation (the PAN's lookup token claimed in `issued_pans` in the same
//! transaction), lookup by id, PAN token, lookup token or account, the read-modify-write
//! update with its history row, reissue, and history-only events.

use super::{Body, Card, NewCard, Records, StoreError, db, new_id, now_ms};
use crate::api::domain::{CardStatus, DcvvState, PinStatus};

const COLUMNS: &str = "id, tenant, account_id, customer_id, token, token_version, lookup_token, masked_pan, kind, expiry, service_code, pvv, pin_blob, status, body, pin_status, block_code, credit_limit, replaced_by, dcvv2";

fn card_of(new: NewCard, status: CardStatus, tenant: String) -> Card {
    Card {
        id: new_id(),
        account_id: new.account_id,
        customer_id: new.customer_id,
        token: new.token,
        token_version: new.token_version,
        lookup_token: new.lookup_token,
        masked_pan: new.masked_pan,
        kind: new.kind,
        expiry: new.expiry,
        service_code: new.service_code,
        pvv: new.pvv,
        pin_blob: new.pin_blob,
        status,
        body: Body(new.body),
        pin_status: PinStatus::Active,
        block_code: None,
        credit_limit: new.credit_limit,
        replaced_by: None,
        dcvv2: DcvvState::Off,
        tenant,
    }
}

impl Records<'_> {
    /// Records a newly issued PAN's lookup token; `Conflict` if it was ever issued (by
    /// any tenant: a PAN is one card in the world).
    pub async fn claim_pan(&mut self, lookup_token: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO issued_pans (lookup_token, created_ms) VALUES ($1, $2)")
            .bind(lookup_token)
            .bind(now_ms())
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Creates a card with `status` on an account of its customer (both this tenant's),
    /// claims its PAN, and appends the `action` history row.
    pub async fn create_card(
        &mut self,
        new: NewCard,
        status: CardStatus,
        action: &str,
    ) -> Result<Card, StoreError> {
        let account = self.account(new.account_id).await?;
        if account.customer_id != new.customer_id {
            return Err(StoreError::Rule(
                "the account does not belong to the customer".into(),
            ));
        }
        self.claim_pan(&new.lookup_token).await?;
        let c = card_of(new, status, self.t());
        let now = now_ms();
        sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO cards ({COLUMNS}, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)")))
            .bind(c.id)
            .bind(self.tenant.as_str())
            .bind(c.account_id)
            .bind(c.customer_id)
            .bind(c.token.as_str())
            .bind(c.token_version)
            .bind(c.lookup_token.as_str())
            .bind(c.masked_pan.as_str())
            .bind(c.kind.as_str())
            .bind(c.expiry.as_str())
            .bind(c.service_code.as_str())
            .bind(c.pvv.as_str())
            .bind(c.pin_blob.as_str())
            .bind(c.status.as_str())
            .bind(c.body.to_string())
            .bind(c.pin_status.as_str())
            .bind("")
            .bind(c.credit_limit)
            .bind(c.replaced_by)
            .bind(c.dcvv2.as_str())
            .bind(now)
            .bind(now)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        self.history("card", c.id, action, None, Some(&c.public()))
            .await?;
        Ok(c)
    }

    async fn card_where(
        &mut self,
        condition: &str,
        key: Key<'_>,
        lock: bool,
    ) -> Result<Option<Card>, StoreError> {
        let lock = if lock { self.dialect.for_update() } else { "" };
        let q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cards WHERE tenant = $1 AND {condition}{lock}"
        )))
        .bind(self.tenant.as_str());
        let q = match key {
            Key::Id(id) => q.bind(id),
            Key::Text(t) => q.bind(t),
        };
        q.fetch_optional(self.db.get().await?).await.map_err(db)
    }

    /// A card by record id (`NotFound("card")`).
    pub async fn card(&mut self, id: i64) -> Result<Card, StoreError> {
        self.card_where("id = $2", Key::Id(id), false)
            .await?
            .ok_or(StoreError::NotFound("card"))
    }

    /// A card by PAN token (through the read cache when there is one).
    pub async fn card_by_token(&mut self, token: &str) -> Result<Option<Card>, StoreError> {
        let Some(cache) = self.cache.clone() else {
            return self.card_where("token = $2", Key::Text(token), false).await;
        };
        let snapshot = cache.snapshot();
        if let Some(card) = cache.card(snapshot, self.tenant.as_str(), token) {
            return Ok(Some(card));
        }
        let card = self
            .card_where("token = $2", Key::Text(token), false)
            .await?;
        if let Some(c) = &card {
            cache.keep_card(snapshot, c);
        }
        Ok(card)
    }

    /// The first card found among PAN token spellings (one query).
    pub async fn card_by_tokens(&mut self, tokens: &[String]) -> Result<Option<Card>, StoreError> {
        if let Some(cache) = &self.cache {
            let snapshot = cache.snapshot();
            for t in tokens {
                if let Some(card) = cache.card(snapshot, self.tenant.as_str(), t) {
                    return Ok(Some(card));
                }
            }
        }
        if tokens.is_empty() {
            return Ok(None);
        }
        let snapshot = self.cache.as_ref().map(|c| c.snapshot());
        let list: Vec<String> = (0..tokens.len()).map(|i| format!("${}", i + 2)).collect();
        let mut q = sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cards WHERE tenant = $1 AND token IN ({}) LIMIT 1",
            list.join(", ")
        )))
        .bind(self.tenant.as_str());
        for t in tokens {
            q = q.bind(t.as_str());
        }
        let card = q.fetch_optional(self.db.get().await?).await.map_err(db)?;
        if let (Some(c), Some(cache), Some(s)) = (&card, &self.cache, snapshot) {
            cache.keep_card(s, c);
        }
        Ok(card)
    }

    /// A card by lookup token (the HMAC of its PAN).
    pub async fn card_by_lookup(&mut self, lookup_token: &str) -> Result<Option<Card>, StoreError> {
        self.card_where("lookup_token = $2", Key::Text(lookup_token), false)
            .await
    }

    /// The card whose `replaced_by` is `id` (the card `id` was issued to replace).
    pub async fn card_replaced_by(&mut self, id: i64) -> Result<Option<Card>, StoreError> {
        self.card_where("replaced_by = $2", Key::Id(id), false)
            .await
    }

    /// The cards of an account, oldest first.
    pub async fn cards_of_account(&mut self, account_id: i64) -> Result<Vec<Card>, StoreError> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cards WHERE tenant = $1 AND account_id = $2 ORDER BY created_ms, id"
        )))
        .bind(self.tenant.as_str())
        .bind(account_id)
        .fetch_all(self.db.get().await?)
        .await
        .map_err(db)
    }

    /// Reads card `id` (row-locked on PostgreSQL), applies `change` (which may refuse),
    /// writes every mutable column back and appends the history row with the before
    /// read here.
    pub async fn try_update_card<E>(
        &mut self,
        id: i64,
        action: &str,
        change: impl FnOnce(&mut Card) -> Result<(), E>,
    ) -> Result<Result<Card, E>, StoreError> {
        let before = self
            .card_where("id = $2", Key::Id(id), true)
            .await?
            .ok_or(StoreError::NotFound("card"))?;
        let mut after = before.clone();
        if let Err(e) = change(&mut after) {
            return Ok(Err(e));
        }
        sqlx::query("UPDATE cards SET status = $1, body = $2, pin_status = $3, block_code = $4, credit_limit = $5, replaced_by = $6, dcvv2 = $7, pvv = $8, pin_blob = $9, expiry = $10, updated_ms = $11 WHERE tenant = $12 AND id = $13")
            .bind(after.status.as_str())
            .bind(after.body.to_string())
            .bind(after.pin_status.as_str())
            .bind(after.block_code.map(|b| b.as_string()).unwrap_or_default())
            .bind(after.credit_limit)
            .bind(after.replaced_by)
            .bind(after.dcvv2.as_str())
            .bind(after.pvv.as_str())
            .bind(after.pin_blob.as_str())
            .bind(after.expiry.as_str())
            .bind(now_ms())
            .bind(self.tenant.as_str())
            .bind(id)
            .execute(self.db.get().await?)
            .await
            .map_err(db)?;
        self.history(
            "card",
            id,
            action,
            Some(&before.public()),
            Some(&after.public()),
        )
        .await?;
        Ok(Ok(after))
    }

    /// [`Records::try_update_card`] with a change that cannot refuse.
    pub async fn update_card(
        &mut self,
        id: i64,
        action: &str,
        change: impl FnOnce(&mut Card),
    ) -> Result<Card, StoreError> {
        self.try_update_card(id, action, |c| {
            change(c);
            Ok::<(), std::convert::Infallible>(())
        })
        .await?
        .map_err(|never| match never {})
    }

    /// Changes a card's status, with history.
    pub async fn set_card_status(
        &mut self,
        id: i64,
        status: CardStatus,
    ) -> Result<Card, StoreError> {
        self.update_card(id, "status", |c| c.status = status).await
    }

    /// Issues `new` (inactive) to replace card `old_id`: the old card gets `replaced_by`
    /// and, with `old_status`, that status (lost/stolen block it at once). Only an
    /// unreplaced card may be replaced (`Rule`), checked on the row read here.
    pub async fn reissue_card(
        &mut self,
        old_id: i64,
        new: NewCard,
        old_status: Option<CardStatus>,
        action: &str,
    ) -> Result<(Card, Card), StoreError> {
        let before = self
            .card_where("id = $2", Key::Id(old_id), true)
            .await?
            .ok_or(StoreError::NotFound("card"))?;
        if before.account_id != new.account_id || before.customer_id != new.customer_id {
            return Err(StoreError::Rule(
                "a replacement stays on the card's account".into(),
            ));
        }
        if before.replaced_by.is_some()
            || matches!(before.status, CardStatus::Cancelled | CardStatus::Replaced)
        {
            return Err(StoreError::Rule("the card was already replaced".into()));
        }
        let c = self
            .create_card(new, CardStatus::Inactive, "create-reissue")
            .await?;
        let after = self
            .update_card(old_id, action, |o| {
                o.replaced_by = Some(c.id);
                if let Some(s) = old_status {
                    o.status = s;
                }
            })
            .await?;
        Ok((after, c))
    }

    /// Appends a history row `action` for card `id` with `detail` (non-secret: a reason
    /// code, a channel) as its `after` value; the card's columns are not touched.
    pub async fn card_event(
        &mut self,
        id: i64,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.card(id).await?;
        self.history("card", id, action, None, Some(detail)).await
    }
}

enum Key<'a> {
    Id(i64),
    Text(&'a str),
}

/// Whether a PAN (by lookup token) was ever issued, by any tenant.
pub async fn pan_issued(
    db: &mut sqlx::AnyConnection,
    lookup_token: &str,
) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM issued_pans WHERE lookup_token = $1")
        .bind(lookup_token)
        .fetch_one(db)
        .await
        .map_err(db_err)?;
    Ok(n > 0)
}

fn db_err(e: sqlx::Error) -> StoreError {
    db(e)
}
