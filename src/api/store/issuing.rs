//! Store methods of the issuing flow that change more than one record at once (an
//! instant account with its card, a reissue that links the old card to the new one), each
//! in one transaction with its history rows, so that a failure leaves nothing half done.

use super::{Account, Card, CardKey, NewCard, Store, StoreError, card_public, db, new_id, now_ms};

pub(super) fn card_of(new: NewCard, status: &str) -> Card {
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
        status: status.to_owned(),
        body: new.body,
        pin_status: "active".into(),
        block_code: String::new(),
        credit_limit: new.credit_limit,
        replaced_by: None,
        dcvv2: "off".into(),
        tenant: new.tenant,
    }
}

pub(super) async fn insert_card(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    c: &Card,
) -> Result<(), StoreError> {
    let now = now_ms();
    sqlx::query("INSERT INTO cards (id, account_id, customer_id, token, token_version, lookup_token, masked_pan, kind, expiry, service_code, pvv, pin_blob, status, body, created_ms, updated_ms, credit_limit, tenant) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)")
        .bind(c.id)
        .bind(c.account_id)
        .bind(c.customer_id)
        .bind(&c.token)
        .bind(c.token_version)
        .bind(&c.lookup_token)
        .bind(&c.masked_pan)
        .bind(&c.kind)
        .bind(&c.expiry)
        .bind(&c.service_code)
        .bind(&c.pvv)
        .bind(&c.pin_blob)
        .bind(&c.status)
        .bind(c.body.to_string())
        .bind(now)
        .bind(now)
        .bind(c.credit_limit)
        .bind(&c.tenant)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// Inserts an account and its `create` history row.
pub(super) async fn insert_account(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &str,
    a: &Account,
) -> Result<(), StoreError> {
    let now = now_ms();
    sqlx::query("INSERT INTO accounts (id, customer_id, product, credit_limit, cycle_day, body, status, created_ms, updated_ms, tenant) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(a.id)
        .bind(a.customer_id)
        .bind(&a.product)
        .bind(a.credit_limit)
        .bind(a.cycle_day)
        .bind(a.body.to_string())
        .bind(&a.status)
        .bind(now)
        .bind(now)
        .bind(&a.tenant)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    let after = serde_json::to_value(a).map_err(|e| StoreError::Database(e.to_string()))?;
    Store::history(tx, "account", a.id, actor, "create", None, Some(&after)).await
}

impl Store {
    /// The card whose `replaced_by` is `id` (the card `id` was issued to replace).
    pub async fn card_replaced_by(&self, id: i64) -> Result<Option<Card>, StoreError> {
        self.card_where("replaced_by = $1", CardKey::Id(id)).await
    }

    /// Creates an ACTIVE card (instant issue). With `create_account`, `account` is
    /// created in the same transaction; otherwise `account.id` names an existing account
    /// of the card's customer (its other fields are not used).
    pub async fn create_instant(
        &self,
        actor: &str,
        account: Account,
        create_account: bool,
        card: NewCard,
    ) -> Result<(Account, Card), StoreError> {
        self.customer(card.customer_id).await?;
        if !create_account {
            let a = self.account(account.id).await?;
            if a.customer_id != card.customer_id {
                return Err(StoreError::Rule(
                    "the account does not belong to the customer".into(),
                ));
            }
            let mut tx = self.pool.begin().await.map_err(db)?;
            let c = Self::insert_instant_card(&mut tx, actor, &a, card).await?;
            tx.commit().await.map_err(db)?;
            return Ok((a, c));
        }
        if !(1..=31).contains(&account.cycle_day) {
            return Err(StoreError::Rule("billing cycle day must be 1-31".into()));
        }
        let a = Account {
            customer_id: card.customer_id,
            status: "active".into(),
            ..account
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        insert_account(&mut tx, actor, &a).await?;
        let c = Self::insert_instant_card(&mut tx, actor, &a, card).await?;
        tx.commit().await.map_err(db)?;
        Ok((a, c))
    }

    async fn insert_instant_card(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        actor: &str,
        a: &Account,
        card: NewCard,
    ) -> Result<Card, StoreError> {
        let c = card_of(
            NewCard {
                account_id: a.id,
                ..card
            },
            "active",
        );
        insert_card(tx, &c).await?;
        Self::history(
            tx,
            "card",
            c.id,
            actor,
            "create-instant",
            None,
            Some(&card_public(&c)),
        )
        .await?;
        Ok(c)
    }

    /// Issues `new` (inactive) to replace card `old_id`: the old card gets `replaced_by`
    /// and, with `old_status`, that status (lost/stolen block it at once). One
    /// transaction; answers (old after, new).
    pub async fn reissue_card(
        &self,
        actor: &str,
        old_id: i64,
        new: NewCard,
        old_status: Option<&str>,
        action: &str,
    ) -> Result<(Card, Card), StoreError> {
        let before = self.card(old_id).await?;
        if before.account_id != new.account_id || before.customer_id != new.customer_id {
            return Err(StoreError::Rule(
                "a replacement stays on the card's account".into(),
            ));
        }
        let c = card_of(new, "inactive");
        let mut after = before.clone();
        after.replaced_by = Some(c.id);
        if let Some(s) = old_status {
            after.status = s.to_owned();
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        insert_card(&mut tx, &c).await?;
        Self::history(
            &mut tx,
            "card",
            c.id,
            actor,
            "create-reissue",
            None,
            Some(&card_public(&c)),
        )
        .await?;
        // Only an unreplaced card may be replaced: the condition makes two concurrent
        // reissues of one card leave exactly one replacement.
        let done = sqlx::query("UPDATE cards SET status = $1, replaced_by = $2, updated_ms = $3 WHERE id = $4 AND replaced_by IS NULL")
            .bind(&after.status)
            .bind(after.replaced_by)
            .bind(now_ms())
            .bind(old_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Rule("the card was already replaced".into()));
        }
        Self::history(
            &mut tx,
            "card",
            old_id,
            actor,
            action,
            Some(&card_public(&before)),
            Some(&card_public(&after)),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok((after, c))
    }
}
