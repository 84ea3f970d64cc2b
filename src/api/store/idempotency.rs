//! The idempotency table: the first answer to each (client, request key), sealed, with
//! the fingerprint of the request it answered. Rows are written only by the
//! [`writer`](super::writer), in the transaction of the call's effects; read here for a
//! replay, and purged after the retention.

use sqlx::{AnyConnection, FromRow};

use super::writer::{Answer, AnswerSeal, Claim, Committed};
use super::{Dialect, Store, StoreError, db};

#[derive(FromRow)]
struct Row {
    fingerprint: String,
    status: i64,
    sealed_answer: String,
}

/// What the table holds for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Nothing: the call runs.
    Nothing,
    /// An answer to the same request.
    Same(Answer),
    /// An answer to another request.
    Other,
}

/// Inserts a claim's rows (its request id, and its alias if any) with the answer;
/// `false` if either key is already recorded (the caller, in a savepoint, rolls back
/// the other).
pub(super) async fn insert(
    conn: &mut AnyConnection,
    claim: &Claim,
    status: u16,
    sealed: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    for key in std::iter::once(&claim.key).chain(claim.alias.as_ref()) {
        let r = sqlx::query("INSERT INTO idempotency (client_id, request_key, fingerprint, status, sealed_answer, created_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING")
            .bind(claim.client_id.as_str())
            .bind(key.as_str())
            .bind(claim.fingerprint.as_str())
            .bind(i64::from(status))
            .bind(sealed)
            .bind(now_ms)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Inserts many claims with their sealed answers; the indices of those inserted (the
/// others' keys were recorded before).
pub(super) async fn insert_many(
    conn: &mut AnyConnection,
    rows: &[(Claim, super::writer::Answer, super::writer::Done)],
    sealed: &[String],
    now_ms: i64,
) -> Result<std::collections::HashSet<usize>, StoreError> {
    let mut sql = String::from(
        "INSERT INTO idempotency (client_id, request_key, fingerprint, status, sealed_answer, created_ms) VALUES ",
    );
    for i in 0..rows.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        let b = i * 6;
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6
        ));
    }
    sql.push_str(" ON CONFLICT DO NOTHING RETURNING client_id, request_key");
    let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
    for ((claim, answer, _), sealed) in rows.iter().zip(sealed) {
        q = q
            .bind(claim.client_id.as_str())
            .bind(claim.key.as_str())
            .bind(claim.fingerprint.as_str())
            .bind(i64::from(answer.status))
            .bind(sealed.as_str())
            .bind(now_ms);
    }
    let mut inserted: std::collections::HashSet<(String, String)> =
        q.fetch_all(conn).await.map_err(db)?.into_iter().collect();
    // The first row of a key that was inserted is the one recorded (a key twice in one
    // chunk: the second answers the first's answer).
    Ok(rows
        .iter()
        .enumerate()
        .filter(|(_, (c, _, _))| inserted.remove(&(c.client_id.clone(), c.key.clone())))
        .map(|(i, _)| i)
        .collect())
}

async fn lookup(
    conn: &mut AnyConnection,
    seal: &dyn AnswerSeal,
    client_id: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Recorded, StoreError> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT fingerprint, status, sealed_answer FROM idempotency WHERE client_id = $1 AND request_key = $2",
    )
    .bind(client_id)
    .bind(key)
    .fetch_optional(conn)
    .await
    .map_err(db)?;
    let Some(row) = row else {
        return Ok(Recorded::Nothing);
    };
    recorded_row(
        seal,
        fingerprint,
        &row.fingerprint,
        row.status,
        &row.sealed_answer,
    )
}

/// A recorded row for a request whose fingerprint is `expected`: its answer opened,
/// or [`Recorded::Other`].
pub(super) fn recorded_row(
    seal: &dyn AnswerSeal,
    expected: &str,
    fingerprint: &str,
    status: i64,
    sealed: &str,
) -> Result<Recorded, StoreError> {
    if fingerprint != expected {
        return Ok(Recorded::Other);
    }
    let body = seal
        .open(sealed)
        .ok_or_else(|| StoreError::Corrupt("a stored answer does not verify".into()))?;
    let status = u16::try_from(status)
        .map_err(|_| StoreError::Corrupt("a stored answer has no HTTP status".into()))?;
    Ok(Recorded::Same(Answer { status, body }))
}

/// The answer recorded for a claim whose insert found the key taken.
pub(super) async fn recorded(
    conn: &mut AnyConnection,
    _dialect: Dialect,
    seal: &dyn AnswerSeal,
    claim: &Claim,
) -> Result<Committed, StoreError> {
    let mut found = lookup(conn, seal, &claim.client_id, &claim.key, &claim.fingerprint).await?;
    if let (Recorded::Nothing, Some(alias)) = (&found, &claim.alias) {
        found = lookup(conn, seal, &claim.client_id, alias, &claim.fingerprint).await?;
    }
    match found {
        Recorded::Same(a) => Ok(Committed::Replay(a)),
        Recorded::Other => Ok(Committed::Mismatch),
        Recorded::Nothing => Err(StoreError::Database(
            "an idempotency key was taken and then vanished".into(),
        )),
    }
}

impl Store {
    /// What is recorded for `(client_id, key)`, read before a call runs.
    pub async fn idempotency_lookup(
        &self,
        seal: &dyn AnswerSeal,
        client_id: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Recorded, StoreError> {
        if let Some(filter) = self.key_filter()
            && !filter.may_contain(client_id, key)
        {
            return Ok(Recorded::Nothing);
        }
        let mut conn = self.read().await?;
        lookup(&mut conn, seal, client_id, key, fingerprint).await
    }

    /// What is recorded for a claim: its request id's answer; if none, its alias's.
    pub async fn claim_lookup(
        &self,
        seal: &dyn AnswerSeal,
        claim: &Claim,
    ) -> Result<Recorded, StoreError> {
        let found = self
            .idempotency_lookup(seal, &claim.client_id, &claim.key, &claim.fingerprint)
            .await?;
        match (&found, &claim.alias) {
            (Recorded::Nothing, Some(alias)) => {
                self.idempotency_lookup(seal, &claim.client_id, alias, &claim.fingerprint)
                    .await
            }
            _ => Ok(found),
        }
    }

    /// Deletes the answers recorded before `before_ms`; how many went. (System call:
    /// every tenant's rows.)
    pub async fn purge_idempotency(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let r = sqlx::query("DELETE FROM idempotency WHERE created_ms < $1")
                    .bind(before_ms)
                    .execute(conn)
                    .await
                    .map_err(db)?;
                Ok(r.rows_affected())
            })
        })
        .await
    }
}
