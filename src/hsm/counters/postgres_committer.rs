//! The shared store's transaction (decide under row locks, record, commit) and its
//! committer task: one transaction per batch of queued requests, `store_unavailable`
//! and a bounded reconnect back-off when it fails. The design is in the parent
//! module's documentation.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::mpsc;

use super::super::record::{CardId, CardRecord};
use super::super::rules::{self, Attempt, PinOutcome, Verdict};
use super::super::{CounterError, Decision};
use super::{
    Core, Job, MAX_BATCH, RACE_RETRIES, RETRY_MAX, RETRY_MIN, TXN_TIMEOUT, is_race, unavailable,
};

impl Core {
    fn open_record(&self, card: &CardId, sealed: &[u8]) -> CardRecord {
        match self.seal.open(self.id, card, sealed) {
            Some(r) => r,
            None => {
                self.metrics.mac_failures.inc();
                tracing::error!(
                    "a counter store record failed its MAC (edited, or moved from another card or store); the card is treated as locked until its tries are reset"
                );
                CardRecord::tampered()
            }
        }
    }

    pub(super) async fn read(&self, card: CardId) -> Result<CardRecord, CounterError> {
        let row: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT record FROM cofre_counter_cards WHERE card = $1")
                .bind(&card.as_bytes()[..])
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(row.map_or_else(CardRecord::default, |r| self.open_record(&card, &r)))
    }

    /// Decides and records `batch` in one transaction; `None` when an insert race was
    /// lost (rolled back: decide again).
    async fn try_commit(
        &self,
        conn: &mut PgConnection,
        batch: &[Job],
    ) -> Result<Option<Vec<Decision>>, sqlx::Error> {
        let mut names: Vec<[u8; 32]> = batch.iter().map(|j| *j.request.card.as_bytes()).collect();
        names.sort_unstable();
        names.dedup();
        let mut tx = conn.begin().await?;
        let now = batch.first().map_or(0, |j| j.request.now);
        let minute = i64::try_from(now / 60).unwrap_or(i64::MAX);
        let others: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(failures), 0)::bigint FROM cofre_counter_guard \
             WHERE minute = $1 AND node <> $2",
        )
        .bind(minute)
        .bind(self.node)
        .fetch_one(&mut *tx)
        .await?;
        if self
            .guard
            .observe_others(now, u64::try_from(others).unwrap_or(0))
        {
            tracing::error!("brute-force guard tripped: PIN failures per minute over the limit");
        }
        let keys: Vec<Vec<u8>> = names.iter().map(|n| n.to_vec()).collect();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT card, record FROM cofre_counter_cards WHERE card = ANY($1) \
             ORDER BY card FOR UPDATE",
        )
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await?;
        // Latest state per card, and whether it has a row.
        let mut state: HashMap<CardId, (CardRecord, bool)> = HashMap::with_capacity(rows.len());
        for (card, record) in rows {
            let Ok(name) = <[u8; 32]>::try_from(card.as_slice()) else {
                continue;
            };
            let card = CardId::from_bytes(name);
            state.insert(card, (self.open_record(&card, &record), true));
        }
        let mut changed: HashMap<CardId, CardRecord> = HashMap::new();
        let mut failures = 0i64;
        let decisions: Vec<Decision> = batch
            .iter()
            .map(|j| {
                let r = &j.request;
                let before = state.get(&r.card).map_or_else(CardRecord::default, |s| s.0);
                let d = rules::decide(
                    &before,
                    r.attempt,
                    r.limits,
                    r.attempt.is_pin_verification() && self.guard.refusing(),
                    r.now,
                );
                if r.attempt == Attempt::Pin(PinOutcome::Mismatched) && d.verdict == Verdict::Failed
                {
                    failures += 1;
                    if self.guard.record_failure(r.now) {
                        tracing::error!(
                            "brute-force guard tripped: PIN failures per minute over the limit"
                        );
                    }
                }
                if d.after != before {
                    let has_row = state.get(&r.card).is_some_and(|s| s.1);
                    state.insert(r.card, (d.after, has_row));
                    changed.insert(r.card, d.after);
                }
                d
            })
            .collect();
        let (mut new_cards, mut new_records) = (Vec::new(), Vec::new());
        let (mut old_cards, mut old_records) = (Vec::new(), Vec::new());
        for name in &names {
            let card = CardId::from_bytes(*name);
            let Some(record) = changed.get(&card) else {
                continue;
            };
            let sealed = self.seal.seal(self.id, &card, record).to_vec();
            if state.get(&card).is_some_and(|s| s.1) {
                old_cards.push(name.to_vec());
                old_records.push(sealed);
            } else {
                new_cards.push(name.to_vec());
                new_records.push(sealed);
            }
        }
        if !new_cards.is_empty() {
            let inserted = sqlx::query(
                "INSERT INTO cofre_counter_cards (card, record) \
                 SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (card) DO NOTHING",
            )
            .bind(&new_cards)
            .bind(&new_records)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if usize::try_from(inserted).ok() != Some(new_cards.len()) {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        if !old_cards.is_empty() {
            sqlx::query(
                "UPDATE cofre_counter_cards AS c SET record = u.record \
                 FROM unnest($1::bytea[], $2::bytea[]) AS u(card, record) WHERE c.card = u.card",
            )
            .bind(&old_cards)
            .bind(&old_records)
            .execute(&mut *tx)
            .await?;
        }
        if failures > 0 {
            sqlx::query(
                "INSERT INTO cofre_counter_guard (minute, node, failures) VALUES ($1, $2, $3) \
                 ON CONFLICT (minute, node) DO UPDATE \
                 SET failures = cofre_counter_guard.failures + EXCLUDED.failures",
            )
            .bind(minute)
            .bind(self.node)
            .bind(failures)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.metrics.commits.inc();
        self.metrics
            .changes
            .inc_by(u64::try_from(changed.len()).unwrap_or(0));
        Ok(Some(decisions))
    }

    async fn commit(
        &self,
        conn: &mut PgConnection,
        batch: &[Job],
    ) -> Result<Vec<Decision>, CounterError> {
        for _ in 0..RACE_RETRIES {
            match self.try_commit(conn, batch).await {
                Ok(Some(d)) => return Ok(d),
                Ok(None) => continue,
                Err(e) if is_race(&e) => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(unavailable(
            "the batch lost too many races with another daemon",
        ))
    }

    async fn connect(&self) -> Result<PgConnection, CounterError> {
        let mut conn = self.options.connect().await.map_err(unavailable)?;
        sqlx::query("SELECT 1")
            .execute(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(conn)
    }

    fn refuse(job: Job, why: &str) {
        let _ = job
            .reply
            .send(Err(CounterError::Unavailable(why.to_owned())));
    }

    pub(super) async fn run_committer(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Job>) {
        let mut conn: Option<PgConnection> = None;
        let mut delay = RETRY_MIN;
        let mut last_minute = 0;
        loop {
            if self.broken.load(Ordering::Acquire) {
                tokio::select! {
                    job = rx.recv() => match job {
                        Some(job) => Self::refuse(job, "the counter store is unreachable"),
                        None => return,
                    },
                    () = tokio::time::sleep(delay) => match self.connect().await {
                        Ok(c) => {
                            conn = Some(c);
                            delay = RETRY_MIN;
                            self.broken.store(false, Ordering::Release);
                            tracing::warn!("counter store reachable again; verification resumes");
                        }
                        Err(_) => delay = (delay * 2).min(RETRY_MAX),
                    },
                }
                continue;
            }
            let Some(first) = rx.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let result = tokio::time::timeout(TXN_TIMEOUT, async {
                if conn.is_none() {
                    conn = Some(self.connect().await?);
                }
                match conn.as_mut() {
                    Some(c) => self.commit(c, &batch).await,
                    None => Err(unavailable("no connection")),
                }
            })
            .await
            .unwrap_or_else(|_| Err(unavailable("the commit did not finish in time")));
            match result {
                Ok(decisions) => {
                    let now = batch.first().map_or(0, |j| j.request.now);
                    for (job, d) in batch.into_iter().zip(decisions) {
                        if d.locked_now {
                            self.metrics.lockouts.inc();
                        }
                        let _ = job.reply.send(Ok(d));
                    }
                    self.sweep_guard(&mut last_minute, now, conn.as_mut()).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "counter store commit failed; refusing verification until it is reachable");
                    self.broken.store(true, Ordering::Release);
                    conn = None;
                    let why = e.to_string();
                    for job in batch {
                        Self::refuse(job, &why);
                    }
                    while let Ok(job) = rx.try_recv() {
                        Self::refuse(job, &why);
                    }
                }
            }
        }
    }

    /// When the minute of the requests' clock changes, deletes guard rows older than an
    /// hour of it.
    async fn sweep_guard(&self, last: &mut u64, now: u64, conn: Option<&mut PgConnection>) {
        let minute = now / 60;
        if minute == *last {
            return;
        }
        *last = minute;
        if let Some(c) = conn {
            let _ = sqlx::query("DELETE FROM cofre_counter_guard WHERE minute < $1")
                .bind(i64::try_from(minute.saturating_sub(60)).unwrap_or(0))
                .execute(c)
                .await;
        }
    }
}
