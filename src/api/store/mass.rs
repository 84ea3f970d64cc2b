//! Mass card issue (`migrations/0003_mass_issue.sql`): the request and its progress
//! (`mass_issues`) and the cards it made (`batch_cards`, no clear value). A request
//! moves `queued` -> `running` -> `done` | `failed` (or `queued` -> `cancelled`); each
//! transition out of `queued` is a conditional update, decided by the database once.
//! A running batch's owner and lease are [`super::mass_lease`]'s.

use serde::Serialize;
use sqlx::FromRow;

use super::{Body, Records, StoreError, db, new_id, now_ms};

/// A mass issue request and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct MassIssue {
    /// Record id.
    pub id: i64,
    /// Owning tenant.
    pub tenant: String,
    /// `organizationNumber`.
    pub organization: i64,
    /// `logo`.
    pub logo: i64,
    /// `cardType` (0 when not sent).
    pub card_type: i64,
    /// Cards asked for.
    pub requested: i64,
    /// Cards made so far.
    pub issued: i64,
    /// Cards that could not be made.
    pub failed: i64,
    /// `queued`, `running`, `done`, `failed`, `cancelled`.
    pub state: String,
    /// Why it failed (a stable code and short text; never a value).
    pub error: String,
    /// The embosser file's name in the bureau directory (empty until done).
    pub file_name: String,
    /// The request body as received (the latest, after updates).
    #[sqlx(try_from = "String")]
    pub body: Body,
    /// Created, epoch ms.
    pub created_ms: i64,
    /// Last changed, epoch ms.
    pub updated_ms: i64,
}

/// One card of a batch (no clear PAN, PIN or CVV).
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct BatchCard {
    /// Position in the batch, from 1.
    pub sequence: i64,
    /// PAN token.
    pub token: String,
    /// Token key version.
    pub token_version: i64,
    /// Lookup token.
    pub lookup_token: String,
    /// Masked PAN.
    pub masked_pan: String,
    /// YYMM.
    pub expiry: String,
    /// Service code.
    pub service_code: String,
    /// PVV.
    #[serde(skip)]
    pub pvv: String,
    /// LMK-encrypted PIN, hex.
    #[serde(skip)]
    pub pin_blob: String,
    /// The PAN under the bureau's transport key, hex (kept until the batch ends).
    #[serde(skip)]
    #[sqlx(default)]
    pub encrypted_pan: String,
    /// The codes under the bureau's transport key, hex (kept until the batch ends).
    #[serde(skip)]
    #[sqlx(default)]
    pub encrypted_codes: String,
}

const COLUMNS: &str = "id, tenant, organization, logo, card_type, requested, issued, failed, state, error, file_name, body, created_ms, updated_ms";

/// The fields a history row shows (the request body is not repeated).
fn public(m: &MassIssue) -> serde_json::Value {
    serde_json::json!({
        "organization": m.organization, "logo": m.logo, "card_type": m.card_type,
        "requested": m.requested, "state": m.state,
    })
}

impl Records<'_> {
    /// Records a new `queued` request.
    pub async fn mass_issue_create(
        &mut self,
        organization: i64,
        logo: i64,
        card_type: i64,
        requested: i64,
        body: &serde_json::Value,
    ) -> Result<MassIssue, StoreError> {
        let now = now_ms();
        let m = MassIssue {
            id: new_id(),
            tenant: self.t(),
            organization,
            logo,
            card_type,
            requested,
            issued: 0,
            failed: 0,
            state: "queued".into(),
            error: String::new(),
            file_name: String::new(),
            body: Body(body.clone()),
            created_ms: now,
            updated_ms: now,
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO mass_issues ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")))
            .bind(m.id)
            .bind(self.tenant.as_str())
            .bind(m.organization)
            .bind(m.logo)
            .bind(m.card_type)
            .bind(m.requested)
            .bind(m.issued)
            .bind(m.failed)
            .bind(m.state.as_str())
            .bind(m.error.as_str())
            .bind(m.file_name.as_str())
            .bind(m.body.to_string())
            .bind(now)
            .bind(now)
            .execute(&mut *self.db)
            .await
            .map_err(db)?;
        self.history("mass_issue", m.id, "create", None, Some(&public(&m)))
            .await?;
        Ok(m)
    }

    /// A request of this tenant by id.
    pub async fn mass_issue(&mut self, id: i64) -> Result<MassIssue, StoreError> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mass_issues WHERE tenant = $1 AND id = $2"
        )))
        .bind(self.tenant.as_str())
        .bind(id)
        .fetch_optional(&mut *self.db)
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound("mass issue"))
    }

    /// The newest request for a product and card type (`queued_only`: only one that has
    /// not started).
    pub async fn mass_issue_latest(
        &mut self,
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
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mass_issues WHERE tenant = $1 AND organization = $2 AND logo = $3 AND card_type = $4{state} ORDER BY created_ms DESC, id DESC LIMIT 1"
        )))
        .bind(self.tenant.as_str())
        .bind(organization)
        .bind(logo)
        .bind(card_type)
        .fetch_optional(&mut *self.db)
        .await
        .map_err(db)
    }

    /// Replaces the quantity and body of a request that is still `queued`, or cancels it.
    /// `None`: it has started (or ended) meanwhile, nothing changed.
    pub async fn mass_issue_update_queued(
        &mut self,
        id: i64,
        requested: i64,
        body: &serde_json::Value,
        cancel: bool,
    ) -> Result<Option<MassIssue>, StoreError> {
        let before = self.mass_issue(id).await?;
        let state = if cancel { "cancelled" } else { "queued" };
        let done = sqlx::query("UPDATE mass_issues SET requested = $1, body = $2, state = $3, updated_ms = $4 WHERE tenant = $5 AND id = $6 AND state = 'queued'")
            .bind(requested)
            .bind(body.to_string())
            .bind(state)
            .bind(now_ms())
            .bind(self.tenant.as_str())
            .bind(id)
            .execute(&mut *self.db)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let after = self.mass_issue(id).await?;
        let action = if cancel { "cancel" } else { "update" };
        self.history(
            "mass_issue",
            id,
            action,
            Some(&public(&before)),
            Some(&public(&after)),
        )
        .await?;
        Ok(Some(after))
    }

    /// Adds made cards and the progress counters. Each card's PAN is claimed in
    /// `issued_pans` first; a card whose PAN was ever issued before (a repeat draw) is
    /// not added, and its sequence is returned so that the caller draws it again.
    /// Fenced: fails, changing nothing, unless `owner` still runs the batch (its lease
    /// is renewed to `lease_until_ms`).
    pub async fn batch_cards_add(
        &mut self,
        id: i64,
        owner: &str,
        lease_until_ms: i64,
        cards: &[BatchCard],
        counts: (i64, i64),
    ) -> Result<Vec<i64>, StoreError> {
        let (issued, failed) = counts;
        self.mass_issue_fence(id, owner, lease_until_ms).await?;
        let now = now_ms();
        let mut repeats = Vec::new();
        // Multi-row INSERTs: 14 parameters a row, well under every limit.
        for chunk in cards.chunks(64) {
            let mut claims =
                String::from("INSERT INTO issued_pans (lookup_token, created_ms) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    claims.push_str(", ");
                }
                claims.push_str(&format!("(${}, ${})", i * 2 + 1, i * 2 + 2));
            }
            claims.push_str(" ON CONFLICT DO NOTHING RETURNING lookup_token");
            let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(claims));
            for c in chunk {
                q = q.bind(c.lookup_token.as_str()).bind(now);
            }
            let claimed: std::collections::HashSet<String> = q
                .fetch_all(&mut *self.db)
                .await
                .map_err(db)?
                .into_iter()
                .collect();
            let mut fresh = Vec::with_capacity(chunk.len());
            for c in chunk {
                if claimed.contains(&c.lookup_token) {
                    fresh.push(c);
                } else {
                    repeats.push(c.sequence);
                }
            }
            if fresh.is_empty() {
                continue;
            }
            let mut sql = String::from(
                "INSERT INTO batch_cards (id, mass_issue_id, sequence, token, token_version, lookup_token, masked_pan, expiry, service_code, pvv, pin_blob, created_ms, encrypted_pan, encrypted_codes) VALUES ",
            );
            for i in 0..fresh.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for k in 1..=14 {
                    if k > 1 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("${}", i * 14 + k));
                }
                sql.push(')');
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for c in fresh {
                q = q
                    .bind(new_id())
                    .bind(id)
                    .bind(c.sequence)
                    .bind(c.token.as_str())
                    .bind(c.token_version)
                    .bind(c.lookup_token.as_str())
                    .bind(c.masked_pan.as_str())
                    .bind(c.expiry.as_str())
                    .bind(c.service_code.as_str())
                    .bind(c.pvv.as_str())
                    .bind(c.pin_blob.as_str())
                    .bind(now)
                    .bind(c.encrypted_pan.as_str())
                    .bind(c.encrypted_codes.as_str());
            }
            q.execute(&mut *self.db).await.map_err(db)?;
        }
        let issued = issued - i64::try_from(repeats.len()).unwrap_or(0);
        sqlx::query("UPDATE mass_issues SET issued = $1, failed = $2, updated_ms = $3 WHERE tenant = $4 AND id = $5")
            .bind(issued)
            .bind(failed)
            .bind(now)
            .bind(self.tenant.as_str())
            .bind(id)
            .execute(&mut *self.db)
            .await
            .map_err(db)?;
        Ok(repeats)
    }

    /// Ends a request `owner` runs: `done` with its file, or `failed` with the reason;
    /// the bureau values kept for a takeover are cleared. `false`, changing nothing, if
    /// `owner` no longer runs it.
    pub async fn mass_issue_finish(
        &mut self,
        id: i64,
        owner: &str,
        state: &str,
        error: &str,
        file_name: &str,
    ) -> Result<bool, StoreError> {
        let before = self.mass_issue(id).await?;
        let done = sqlx::query("UPDATE mass_issues SET state = $1, error = $2, file_name = $3, updated_ms = $4 WHERE tenant = $5 AND id = $6 AND owner = $7 AND state = 'running'")
            .bind(state)
            .bind(error)
            .bind(file_name)
            .bind(now_ms())
            .bind(self.tenant.as_str())
            .bind(id)
            .bind(owner)
            .execute(&mut *self.db)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.batch_cards_forget_bureau_values(id).await?;
        let mut after = before.clone();
        after.state = state.into();
        self.history(
            "mass_issue",
            id,
            state,
            Some(&public(&before)),
            Some(&public(&after)),
        )
        .await?;
        Ok(true)
    }

    /// A page of a batch's cards, by sequence (the batch must be this tenant's).
    pub async fn batch_cards(
        &mut self,
        id: i64,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<BatchCard>, StoreError> {
        self.mass_issue(id).await?;
        sqlx::query_as("SELECT sequence, token, token_version, lookup_token, masked_pan, expiry, service_code, pvv, pin_blob FROM batch_cards WHERE mass_issue_id = $1 ORDER BY sequence LIMIT $2 OFFSET $3")
            .bind(id)
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *self.db)
            .await
            .map_err(db)
    }
}
