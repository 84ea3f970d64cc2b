//! Calls in progress, known to every facade on one PostgreSQL database.
//!
//! Before a call that may reach the daemon runs, it marks its keys (request id, and
//! `Idempotency-Key` alias) in `calls_in_progress` with its instance's owner id and a
//! lease ended by the database's clock, in the same statement that reads the answer
//! recorded for them (one round trip, [`Store::claim_begin`]):
//!
//! * a recorded answer: nothing is marked; the caller replays it (or refuses a reused id);
//! * every key marked (free, or its marker's lease ended): the call runs;
//! * a key marked by a live call: the keys this statement took are given back, the
//!   answers are read again (a fresh snapshot: the marker's owner may have just
//!   committed) and, with none, the call is `409 request_in_progress`.
//!
//! A marker is given back at once ([`Store::claim_end`]) when its call ends without a
//! recorded answer (a server error, a refusal before the daemon, a cancelled call), so
//! that a retry runs. A call whose answer is recorded leaves its marker to its lease:
//! deleting it in the transaction that records the answer would let a copy that waited
//! on the marker's row lock take the key afterwards, with a statement snapshot from
//! before that answer, and run the daemon call a second time. While the marker lives,
//! a copy reads the answer again and replays it; once it has ended, the copy's own
//! snapshot holds the answer. A crashed instance's markers end with their lease.
//! Ended markers are deleted by [`Store::purge_calls_in_progress`].
//!
//! The table is PostgreSQL's only, `UNLOGGED` (no write-ahead log: a marker costs no
//! flush, is not replicated, and is emptied by a database crash, which ends every
//! call anyway), created at open rather than by a migration, which SQLite would also
//! run. On SQLite (one facade) the process's own set of calls in progress is the
//! whole truth.

use std::time::Duration;

use super::idempotency::Recorded;
use super::writer::{AnswerSeal, Claim};
use super::{Dialect, Store, StoreError, db};

/// What a call may do, decided before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// Nothing recorded and (PostgreSQL) every key marked by this call: it runs, and
    /// ends with [`Store::claim_end`] unless its answer is recorded.
    Run,
    /// An answer is recorded for a key: [`Recorded::Same`] or [`Recorded::Other`].
    Recorded(Recorded),
    /// Another call with one of these keys is running (on this or another instance).
    InProgress,
}

/// Creates the table (PostgreSQL), under an advisory lock so that two instances
/// starting at once do not race on the catalog.
pub(super) async fn create(conn: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await.map_err(db)?;
    // Any constant of this table's own: "cofre.calls_in_progress".
    sqlx::query("SELECT CAST(pg_advisory_xact_lock(7305104215) AS TEXT)")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::query(
        "CREATE UNLOGGED TABLE IF NOT EXISTS calls_in_progress (
            client_id TEXT NOT NULL,
            request_key TEXT NOT NULL,
            owner TEXT NOT NULL,
            lease_until TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (client_id, request_key))",
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)
}

/// The statement: the answers recorded for the keys, and, when there is none, the keys
/// marked by this call. Row kind `t` is a key taken, `r` a recorded answer.
fn begin_sql(keys: usize) -> String {
    let (list, values) = if keys == 2 {
        ("$2, $3", "($2), ($3)")
    } else {
        ("$2", "($2)")
    };
    let (owner, lease) = if keys == 2 {
        ("$4", "$5")
    } else {
        ("$3", "$4")
    };
    format!(
        "WITH recorded AS (
            SELECT request_key, fingerprint, status, sealed_answer FROM idempotency
            WHERE client_id = $1 AND request_key IN ({list})
        ), taken AS (
            INSERT INTO calls_in_progress (client_id, request_key, owner, lease_until)
            SELECT $1, k, {owner}, clock_timestamp() + {lease} * INTERVAL '1 millisecond'
            FROM (VALUES {values}) AS keys (k)
            WHERE NOT EXISTS (SELECT 1 FROM recorded)
            ON CONFLICT (client_id, request_key) DO UPDATE
                SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
                WHERE calls_in_progress.lease_until <= clock_timestamp()
            RETURNING request_key
        )
        SELECT 't' AS kind, request_key, '' AS fingerprint, CAST(0 AS BIGINT) AS status,
            '' AS sealed_answer FROM taken
        UNION ALL
        SELECT 'r', request_key, fingerprint, status, sealed_answer FROM recorded"
    )
}

type BeginRow = (String, String, String, i64, String);

/// The keys of a claim: its request id, then its alias.
fn keys_of(claim: &Claim) -> Vec<&str> {
    std::iter::once(claim.key.as_str())
        .chain(claim.alias.as_deref())
        .collect()
}

/// What the rows of [`begin_sql`] mean: the recorded answer that decides (the request
/// id's before the alias's), or the keys taken.
fn decide(
    seal: &dyn AnswerSeal,
    claim: &Claim,
    rows: &[BeginRow],
) -> Result<Result<Recorded, Vec<String>>, StoreError> {
    for key in keys_of(claim) {
        if let Some((_, _, fingerprint, status, sealed)) = rows
            .iter()
            .find(|(kind, k, ..)| kind == "r" && k.as_str() == key)
        {
            return super::idempotency::recorded_row(
                seal,
                &claim.fingerprint,
                fingerprint,
                *status,
                sealed,
            )
            .map(Ok);
        }
    }
    Ok(Err(rows
        .iter()
        .filter(|(kind, ..)| kind == "t")
        .map(|(_, k, ..)| k.clone())
        .collect()))
}

impl Store {
    /// Decides whether a call that may change something runs (see the module
    /// documentation); `owner` names this instance, `lease` bounds its markers.
    pub async fn claim_begin(
        &self,
        seal: &dyn AnswerSeal,
        claim: &Claim,
        owner: &str,
        lease: Duration,
    ) -> Result<Begun, StoreError> {
        if self.dialect == Dialect::Sqlite {
            return Ok(match self.claim_lookup(seal, claim).await? {
                Recorded::Nothing => Begun::Run,
                found => Begun::Recorded(found),
            });
        }
        let keys = keys_of(claim);
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let sql = begin_sql(keys.len());
        let mut q =
            sqlx::query_as::<_, BeginRow>(sqlx::AssertSqlSafe(sql)).bind(claim.client_id.as_str());
        for k in &keys {
            q = q.bind(*k);
        }
        let mut conn = self.read().await?;
        let rows = q.bind(owner).bind(lease_ms).fetch_all(&mut *conn).await;
        drop(conn);
        let taken = match decide(seal, claim, &rows.map_err(db)?)? {
            Ok(found) => return Ok(Begun::Recorded(found)),
            Err(taken) => taken,
        };
        if taken.len() == keys.len() {
            return Ok(Begun::Run);
        }
        // A live call holds a key: give back what this one took, then read the answers
        // again (the holder may have committed after this statement's snapshot).
        if !taken.is_empty() {
            self.release(&claim.client_id, &taken, owner).await?;
        }
        Ok(match self.claim_lookup(seal, claim).await? {
            Recorded::Nothing => Begun::InProgress,
            found => Begun::Recorded(found),
        })
    }

    /// Gives back the markers of a call that ended without a recorded answer (nothing
    /// on SQLite); a marker another instance took after this one's lease ended is kept.
    pub async fn claim_end(&self, claim: &Claim, owner: &str) -> Result<(), StoreError> {
        if self.dialect == Dialect::Sqlite {
            return Ok(());
        }
        let keys: Vec<String> = keys_of(claim).into_iter().map(str::to_owned).collect();
        self.release(&claim.client_id, &keys, owner).await
    }

    async fn release(
        &self,
        client_id: &str,
        keys: &[String],
        owner: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.read().await?;
        for key in keys {
            sqlx::query(
                "DELETE FROM calls_in_progress WHERE client_id = $1 AND request_key = $2 AND owner = $3",
            )
            .bind(client_id)
            .bind(key.as_str())
            .bind(owner)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        }
        Ok(())
    }

    /// Deletes the markers whose lease ended (PostgreSQL; none on SQLite); how many.
    pub async fn purge_calls_in_progress(&self) -> Result<u64, StoreError> {
        if self.dialect == Dialect::Sqlite {
            return Ok(0);
        }
        let mut conn = self.read().await?;
        let r = sqlx::query("DELETE FROM calls_in_progress WHERE lease_until <= clock_timestamp()")
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        Ok(r.rows_affected())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::api::store::Answer;

    #[derive(Debug)]
    struct Clear;
    impl AnswerSeal for Clear {
        fn seal(&self, clear: &[u8]) -> String {
            String::from_utf8(clear.to_vec()).unwrap()
        }
        fn open(&self, sealed: &str) -> Option<Vec<u8>> {
            (sealed != "forged").then(|| sealed.as_bytes().to_vec())
        }
    }

    fn claim(alias: Option<&str>) -> Claim {
        Claim {
            client_id: "c".into(),
            key: "r:1".into(),
            alias: alias.map(str::to_owned),
            fingerprint: "f".into(),
            keep_body: true,
        }
    }

    fn row(kind: &str, key: &str, fingerprint: &str, status: i64, sealed: &str) -> BeginRow {
        (
            kind.into(),
            key.into(),
            fingerprint.into(),
            status,
            sealed.into(),
        )
    }

    #[test]
    fn the_request_ids_answer_decides_before_the_aliases() {
        let c = claim(Some("k:x"));
        let rows = [
            row("r", "k:x", "other", 200, "alias"),
            row("r", "r:1", "f", 201, "mine"),
        ];
        let want = Recorded::Same(Answer {
            status: 201,
            body: b"mine".to_vec(),
        });
        assert_eq!(decide(&Clear, &c, &rows).unwrap(), Ok(want));
        // Only the alias recorded, for another request: the id is reused.
        let rows = [row("r", "k:x", "other", 200, "alias")];
        assert_eq!(decide(&Clear, &c, &rows).unwrap(), Ok(Recorded::Other));
    }

    #[test]
    fn keys_taken_are_listed_and_a_forged_answer_is_an_error() {
        let c = claim(Some("k:x"));
        let rows = [row("t", "k:x", "", 0, ""), row("t", "r:1", "", 0, "")];
        assert_eq!(
            decide(&Clear, &c, &rows).unwrap(),
            Err(vec!["k:x".to_owned(), "r:1".to_owned()])
        );
        assert_eq!(decide(&Clear, &c, &[]).unwrap(), Err(Vec::new()));
        let forged = [row("r", "r:1", "f", 200, "forged")];
        assert!(decide(&Clear, &c, &forged).is_err());
        let no_status = [row("r", "r:1", "f", 70_000, "x")];
        assert!(decide(&Clear, &c, &no_status).is_err());
    }

    #[test]
    fn the_statement_names_each_key_once() {
        let one = begin_sql(1);
        assert!(one.contains("IN ($2)") && one.contains("VALUES ($2)"));
        assert!(one.contains("$3, clock_timestamp() + $4"));
        let two = begin_sql(2);
        assert!(two.contains("IN ($2, $3)") && two.contains("VALUES ($2), ($3)"));
        assert!(two.contains("$4, clock_timestamp() + $5"));
    }
}
