//! The idempotency table: the first answer to each (client, request key). A call claims
//! its key with a `pending` row (the primary key makes the claim atomic on both
//! databases), runs, then records its answer; a repeat with the same body gets that
//! answer, a repeat with another body or while the first still runs is refused.
//! Answers are kept for the configured retention, then purged (`idempotency_purge`).

use sqlx::Row;

use super::{Store, StoreError, db, now_ms};

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: this call runs and must [`Store::idempotency_finish`] or
    /// [`Store::idempotency_release`].
    Fresh,
    /// The key was used before with the same body: its first answer.
    Replay {
        /// HTTP status of the first answer.
        status: u16,
        /// Its body.
        response: String,
    },
    /// The key was used with another body.
    Mismatch,
    /// The first call with this key is still running.
    InProgress,
}

impl Store {
    /// Claims `(client_id, key)` for a body hash.
    pub async fn idempotency_claim(
        &self,
        client_id: &str,
        key: &str,
        body_hash: &str,
    ) -> Result<Claim, StoreError> {
        let inserted = sqlx::query("INSERT INTO idempotency (client_id, request_key, body_hash, state, status, response, created_ms) VALUES ($1, $2, $3, 'pending', 0, '', $4)")
            .bind(client_id)
            .bind(key)
            .bind(body_hash)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db);
        match inserted {
            Ok(_) => return Ok(Claim::Fresh),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        let row = sqlx::query("SELECT body_hash, state, status, response FROM idempotency WHERE client_id = $1 AND request_key = $2")
            .bind(client_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let Some(row) = row else {
            // Released between our insert and select: the caller may retry.
            return Ok(Claim::InProgress);
        };
        let hash: String = row.try_get(0).map_err(db)?;
        let state: String = row.try_get(1).map_err(db)?;
        if hash != body_hash {
            return Ok(Claim::Mismatch);
        }
        if state != "done" {
            return Ok(Claim::InProgress);
        }
        let status: i64 = row.try_get(2).map_err(db)?;
        Ok(Claim::Replay {
            status: u16::try_from(status).unwrap_or(500),
            response: row.try_get(3).map_err(db)?,
        })
    }

    /// Records the answer of a fresh claim.
    pub async fn idempotency_finish(
        &self,
        client_id: &str,
        key: &str,
        status: u16,
        response: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE idempotency SET state = 'done', status = $1, response = $2 WHERE client_id = $3 AND request_key = $4")
            .bind(i64::from(status))
            .bind(response)
            .bind(client_id)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Drops a fresh claim whose call failed on the server side, so that a retry runs.
    pub async fn idempotency_release(&self, client_id: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency WHERE client_id = $1 AND request_key = $2 AND state = 'pending'",
        )
        .bind(client_id)
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Deletes the answers claimed before `done_before_ms` and the claims still pending
    /// since before `pending_before_ms` (their call died with its process, or the key
    /// would answer `request_in_progress` for ever). Returns how many rows went.
    pub async fn idempotency_purge(
        &self,
        done_before_ms: i64,
        pending_before_ms: i64,
    ) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM idempotency WHERE (state = 'done' AND created_ms < $1) OR (state = 'pending' AND created_ms < $2)")
            .bind(done_before_ms)
            .bind(pending_before_ms)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(r.rows_affected())
    }

    /// Records a newly issued PAN's lookup token; `Conflict` if it was ever issued.
    pub async fn claim_pan(&self, lookup_token: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO issued_pans (lookup_token, created_ms) VALUES ($1, $2)")
            .bind(lookup_token)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}
