//! Store methods for mass card issue (`migrations/0003_mass_issue.sql`): the request and
//! its progress (`mass_issues`) and the cards it made (`batch_cards`, no clear value).
//! A request moves `queued` -> `running` -> `done` | `failed` (or `queued` ->
//! `cancelled`); the `queued` -> anything transitions are conditional updates, so an
//! update racing the worker's start is decided by the database, once.

use sqlx::Row;

use super::{Store, StoreError, db, json, new_id, now_ms};
// The record types are defined beside the handlers (`api::mass`), where callers can
// name them: this module is private to the store.
use crate::api::mass::{BatchCard, MassIssue};

const COLUMNS: &str = "id, tenant, organization, logo, card_type, requested, issued, failed, state, error, file_name, body, created_ms, updated_ms";

fn from_row(row: &sqlx::any::AnyRow) -> Result<MassIssue, StoreError> {
    let body: String = row.try_get(11).map_err(db)?;
    Ok(MassIssue {
        id: row.try_get(0).map_err(db)?,
        tenant: row.try_get(1).map_err(db)?,
        organization: row.try_get(2).map_err(db)?,
        logo: row.try_get(3).map_err(db)?,
        card_type: row.try_get(4).map_err(db)?,
        requested: row.try_get(5).map_err(db)?,
        issued: row.try_get(6).map_err(db)?,
        failed: row.try_get(7).map_err(db)?,
        state: row.try_get(8).map_err(db)?,
        error: row.try_get(9).map_err(db)?,
        file_name: row.try_get(10).map_err(db)?,
        body: json(&body),
        created_ms: row.try_get(12).map_err(db)?,
        updated_ms: row.try_get(13).map_err(db)?,
    })
}

/// The fields a history row shows (the request body is not repeated).
fn public(m: &MassIssue) -> serde_json::Value {
    serde_json::json!({
        "organization": m.organization, "logo": m.logo, "card_type": m.card_type,
        "requested": m.requested, "state": m.state,
    })
}

impl Store {
    /// Records a new `queued` request.
    #[allow(clippy::too_many_arguments)]
    pub async fn mass_issue_create(
        &self,
        actor: &str,
        tenant: &str,
        organization: i64,
        logo: i64,
        card_type: i64,
        requested: i64,
        body: &serde_json::Value,
    ) -> Result<MassIssue, StoreError> {
        let now = now_ms();
        let m = MassIssue {
            id: new_id(),
            tenant: tenant.to_owned(),
            organization,
            logo,
            card_type,
            requested,
            issued: 0,
            failed: 0,
            state: "queued".into(),
            error: String::new(),
            file_name: String::new(),
            body: body.clone(),
            created_ms: now,
            updated_ms: now,
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(&format!("INSERT INTO mass_issues ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"))
            .bind(m.id)
            .bind(&m.tenant)
            .bind(m.organization)
            .bind(m.logo)
            .bind(m.card_type)
            .bind(m.requested)
            .bind(m.issued)
            .bind(m.failed)
            .bind(&m.state)
            .bind(&m.error)
            .bind(&m.file_name)
            .bind(m.body.to_string())
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let after = public(&m);
        Self::history(
            &mut tx,
            "mass_issue",
            m.id,
            actor,
            "create",
            None,
            Some(&after),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(m)
    }

    /// A request by id.
    pub async fn mass_issue(&self, id: i64) -> Result<MassIssue, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM mass_issues WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref()
            .map(from_row)
            .transpose()?
            .ok_or(StoreError::NotFound("mass issue"))
    }

    /// The newest request of a tenant for a product and card type (`queued_only`: only
    /// one that has not started).
    pub async fn mass_issue_latest(
        &self,
        tenant: &str,
        organization: i64,
        logo: i64,
        card_type: i64,
        queued_only: bool,
    ) -> Result<Option<MassIssue>, StoreError> {
        let state = if queued_only {
            " AND state = 'queued'"
        } else {
            ""
        };
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM mass_issues WHERE tenant = $1 AND organization = $2 AND logo = $3 AND card_type = $4{state} ORDER BY created_ms DESC, id DESC LIMIT 1"
        ))
        .bind(tenant)
        .bind(organization)
        .bind(logo)
        .bind(card_type)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(from_row).transpose()
    }

    /// Replaces the quantity and body of a request that is still `queued`, or cancels it
    /// (`cancel`). `None`: it has started (or ended) meanwhile, nothing changed.
    pub async fn mass_issue_update_queued(
        &self,
        actor: &str,
        id: i64,
        requested: i64,
        body: &serde_json::Value,
        cancel: bool,
    ) -> Result<Option<MassIssue>, StoreError> {
        let before = self.mass_issue(id).await?;
        let state = if cancel { "cancelled" } else { "queued" };
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query("UPDATE mass_issues SET requested = $1, body = $2, state = $3, updated_ms = $4 WHERE id = $5 AND state = 'queued'")
            .bind(requested)
            .bind(body.to_string())
            .bind(state)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let after = MassIssue {
            requested,
            body: body.clone(),
            state: state.into(),
            ..before.clone()
        };
        let action = if cancel { "cancel" } else { "update" };
        Self::history(
            &mut tx,
            "mass_issue",
            id,
            actor,
            action,
            Some(&public(&before)),
            Some(&public(&after)),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        self.mass_issue(id).await.map(Some)
    }

    /// Startup recovery: every `running` request becomes `failed` (`interrupted`, with
    /// history); returns those ids and the ids still `queued`, oldest first.
    pub async fn mass_issue_recover(&self) -> Result<(Vec<i64>, Vec<i64>), StoreError> {
        let ids = |state: &'static str| async move {
            sqlx::query("SELECT id FROM mass_issues WHERE state = $1 ORDER BY created_ms, id")
                .bind(state)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.try_get::<i64, _>(0).map_err(db))
                .collect::<Result<Vec<i64>, StoreError>>()
        };
        let running = ids("running").await?;
        for id in &running {
            self.mass_issue_finish(
                *id,
                "failed",
                "interrupted: the facade restarted during the batch",
                "",
            )
            .await?;
        }
        Ok((running, ids("queued").await?))
    }

    /// Moves a `queued` request to `running`; `None` if it is not queued (cancelled).
    pub async fn mass_issue_start(&self, id: i64) -> Result<Option<MassIssue>, StoreError> {
        let done = sqlx::query(
            "UPDATE mass_issues SET state = 'running', updated_ms = $1 WHERE id = $2 AND state = 'queued'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.mass_issue(id).await.map(Some)
    }

    /// Adds made cards and the progress counters in one transaction.
    pub async fn batch_cards_add(
        &self,
        id: i64,
        cards: &[BatchCard],
        issued: i64,
        failed: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let now = now_ms();
        // One multi-row INSERT per chunk: 11 parameters a row, well under every limit.
        for chunk in cards.chunks(50) {
            let mut sql = String::from(
                "INSERT INTO batch_cards (id, mass_issue_id, sequence, token, token_version, lookup_token, masked_pan, expiry, service_code, pvv, pin_blob, created_ms) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 11;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, {id}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9,
                    b + 10,
                    b + 11
                ));
            }
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q
                    .bind(new_id())
                    .bind(c.sequence)
                    .bind(c.token.clone())
                    .bind(c.token_version)
                    .bind(c.lookup_token.clone())
                    .bind(c.masked_pan.clone())
                    .bind(c.expiry.clone())
                    .bind(c.service_code.clone())
                    .bind(c.pvv.clone())
                    .bind(c.pin_blob.clone())
                    .bind(now);
            }
            q.execute(&mut *tx).await.map_err(db)?;
        }
        sqlx::query(
            "UPDATE mass_issues SET issued = $1, failed = $2, updated_ms = $3 WHERE id = $4",
        )
        .bind(issued)
        .bind(failed)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// Ends a running request: `done` with its file, or `failed` with the reason.
    pub async fn mass_issue_finish(
        &self,
        id: i64,
        state: &str,
        error: &str,
        file_name: &str,
    ) -> Result<(), StoreError> {
        let before = self.mass_issue(id).await?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE mass_issues SET state = $1, error = $2, file_name = $3, updated_ms = $4 WHERE id = $5")
            .bind(state)
            .bind(error)
            .bind(file_name)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let after = MassIssue {
            state: state.into(),
            ..before.clone()
        };
        Self::history(
            &mut tx,
            "mass_issue",
            id,
            "cofre",
            state,
            Some(&public(&before)),
            Some(&public(&after)),
        )
        .await?;
        tx.commit().await.map_err(db)
    }

    /// A page of a batch's cards, by sequence.
    pub async fn batch_cards(
        &self,
        id: i64,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<BatchCard>, StoreError> {
        let rows = sqlx::query("SELECT sequence, token, token_version, lookup_token, masked_pan, expiry, service_code, pvv, pin_blob FROM batch_cards WHERE mass_issue_id = $1 ORDER BY sequence LIMIT $2 OFFSET $3")
            .bind(id)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(BatchCard {
                    sequence: r.try_get(0).map_err(db)?,
                    token: r.try_get(1).map_err(db)?,
                    token_version: r.try_get(2).map_err(db)?,
                    lookup_token: r.try_get(3).map_err(db)?,
                    masked_pan: r.try_get(4).map_err(db)?,
                    expiry: r.try_get(5).map_err(db)?,
                    service_code: r.try_get(6).map_err(db)?,
                    pvv: r.try_get(7).map_err(db)?,
                    pin_blob: r.try_get(8).map_err(db)?,
                })
            })
            .collect()
    }
}
