//! Who runs a mass issue batch (`migrations/0031_mass_issue_lease.sql`): a `running`
//! batch names its owner (one facade process) and the time its lease ends. Every change
//! the owner makes to the batch is conditional on still owning it (a fence), so an
//! instance that lost its lease (stopped, paused, cut off) can never add a card or end
//! the batch after another took it over; the one that takes over resumes from the cards
//! committed.

use sqlx::FromRow;

use super::{MassIssue, Records, Store, StoreError, db, now_ms};

/// A card committed by a batch, with what the embosser file needs of it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CommittedCard {
    /// Position in the batch.
    pub sequence: i64,
    /// Masked PAN.
    pub masked_pan: String,
    /// The PAN under the bureau's transport key, hex.
    pub encrypted_pan: String,
    /// The codes under the bureau's transport key, hex.
    pub encrypted_codes: String,
}

/// How a batch may be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A `queued` batch, or a `running` one whose lease ended.
    Free,
    /// Also a `running` batch whose lease has not ended: at start on SQLite, where
    /// this process is the only facade, so the owner named is this process's former
    /// self.
    EvenLeased,
}

impl Records<'_> {
    /// Makes `owner` the batch's runner until `lease_until_ms` if it may be claimed;
    /// `None` if not (cancelled, ended, another instance's lease still runs, or, on
    /// PostgreSQL, its row is locked by a transaction in progress). The update is
    /// conditional: of two instances claiming at once, one gets it.
    pub async fn mass_issue_claim(
        &mut self,
        id: i64,
        owner: &str,
        lease_until_ms: i64,
        how: Claim,
    ) -> Result<Option<MassIssue>, StoreError> {
        let now = now_ms();
        if self.dialect == super::Dialect::Postgres {
            // The row is locked while its owner commits: that owner is alive, and if it
            // hangs inside that transaction, waiting for it would stall this instance's
            // writer (every write of every call). So a locked row is not claimed now.
            let free: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM mass_issues WHERE tenant = $1 AND id = $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(self.tenant.as_str())
            .bind(id)
            .fetch_optional(&mut *self.db)
            .await
            .map_err(db)?;
            if free.is_none() {
                return Ok(None);
            }
        }
        let leased = match how {
            Claim::Free => "lease_until_ms < $1",
            Claim::EvenLeased => "(lease_until_ms < $1 OR 1 = 1)",
        };
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE mass_issues SET state = 'running', owner = $2, lease_until_ms = $3, updated_ms = $1 \
             WHERE tenant = $4 AND id = $5 AND (state = 'queued' OR (state = 'running' AND {leased}))"
        )))
        .bind(now)
        .bind(owner)
        .bind(lease_until_ms)
        .bind(self.tenant.as_str())
        .bind(id)
        .execute(&mut *self.db)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.mass_issue(id).await.map(Some)
    }

    /// Extends `owner`'s lease on a running batch; `false` if it is no longer the
    /// owner (taken over, or ended).
    pub async fn mass_issue_renew(
        &mut self,
        id: i64,
        owner: &str,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mass_issues SET lease_until_ms = $1 WHERE tenant = $2 AND id = $3 AND owner = $4 AND state = 'running'",
        )
        .bind(lease_until_ms)
        .bind(self.tenant.as_str())
        .bind(id)
        .bind(owner)
        .execute(&mut *self.db)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    /// The fence of every change an owner makes: renews the lease, or fails with
    /// [`StoreError::Rule`] (the transaction is rolled back) when `owner` lost the batch.
    pub async fn mass_issue_fence(
        &mut self,
        id: i64,
        owner: &str,
        lease_until_ms: i64,
    ) -> Result<(), StoreError> {
        if self.mass_issue_renew(id, owner, lease_until_ms).await? {
            Ok(())
        } else {
            Err(StoreError::Rule(format!(
                "mass issue {id}: this instance no longer runs it"
            )))
        }
    }

    /// The cards a batch committed so far, by sequence.
    pub async fn batch_cards_committed(
        &mut self,
        id: i64,
    ) -> Result<Vec<CommittedCard>, StoreError> {
        self.mass_issue(id).await?;
        sqlx::query_as("SELECT sequence, masked_pan, encrypted_pan, encrypted_codes FROM batch_cards WHERE mass_issue_id = $1 ORDER BY sequence")
            .bind(id)
            .fetch_all(&mut *self.db)
            .await
            .map_err(db)
    }

    /// Clears the bureau values kept for a takeover (the batch ended: they are in the
    /// file, or no file will be written).
    pub(super) async fn batch_cards_forget_bureau_values(
        &mut self,
        id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE batch_cards SET encrypted_pan = '', encrypted_codes = '' WHERE mass_issue_id = $1")
            .bind(id)
            .execute(&mut *self.db)
            .await
            .map_err(db)?;
        Ok(())
    }
}

impl Store {
    /// `(tenant, id)` of the batches an instance may claim now (every tenant's; system
    /// call): `queued`, and `running` whose lease ended before `now_ms` (every `running`
    /// one with [`Claim::EvenLeased`]), oldest first.
    pub async fn mass_issue_claimable(
        &self,
        now_ms: i64,
        how: Claim,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let leased = match how {
            Claim::Free => "lease_until_ms < $1",
            Claim::EvenLeased => "(lease_until_ms < $1 OR 1 = 1)",
        };
        let mut conn = self.read().await?;
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT tenant, id FROM mass_issues WHERE state = 'queued' OR (state = 'running' AND {leased}) ORDER BY created_ms, id"
        )))
        .bind(now_ms)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)
    }
}
