//! The committer thread of the one-node store: it takes every queued change, writes
//! them in one durable transaction, and only then drops the pending states that
//! transaction covered and releases the answers; a failed write refuses the changes
//! and everything queued behind them until a probe write succeeds.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use redb::Durability;

use super::super::{CounterError, META, RECORDS};
use super::{CardRecord, Core, Job, MAX_BATCH, lock};

impl Core {
    /// After a durable commit: the pending states it covered are dropped (unless a later
    /// decision replaced them), then the answers go.
    pub(super) fn committed_batch(&self, batch: Vec<Job>) {
        for job in &batch {
            let Some(written) = &job.write else { continue };
            let mut shard = lock(self.shard(&job.card));
            if *written == CardRecord::default() {
                shard.recorded.remove(&job.card);
            } else {
                shard.recorded.insert(job.card);
            }
            if shard
                .pending
                .get(&job.card)
                .is_some_and(|(_, s)| *s == job.seq)
            {
                shard.pending.remove(&job.card);
            }
        }
        for job in batch {
            if job.decision.locked_now {
                self.metrics.lockouts.inc();
            }
            let _ = job.reply.send(Ok(job.decision));
        }
    }

    /// After a failed commit: every pending state is dropped (the committed records are
    /// the truth again), the batch and everything queued behind it are refused, and
    /// decisions are refused until a probe write succeeds.
    pub(super) fn failed_batch(&self, batch: Vec<Job>, rx: &Receiver<Job>, error: &str) {
        self.broken.store(true, Ordering::Release);
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            shard.pending.clear();
            shard.version += 1;
        }
        // Every decision queued before the flag was seen is in the queue by now: it
        // was sent under a shard lock this sweep has since taken.
        let refused = batch
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()));
        for job in refused {
            let _ = job
                .reply
                .send(Err(CounterError::Unavailable(error.to_owned())));
        }
    }

    pub(super) fn write(&self, batch: &[Job]) -> Result<(), redb::Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate).map_err(|e| {
            redb::Error::from(redb::StorageError::Io(std::io::Error::other(e.to_string())))
        })?;
        {
            let mut table = txn.open_table(RECORDS)?;
            for job in batch {
                let Some(record) = &job.write else { continue };
                let key = &job.card.as_bytes()[..];
                if *record == CardRecord::default() {
                    table.remove(key)?;
                } else {
                    table.insert(key, &self.seal.seal(self.id, &job.card, record)[..])?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    pub(super) fn probe(&self) -> bool {
        let Ok(txn) = self.db.begin_write() else {
            return false;
        };
        let ok = txn
            .open_table(META)
            .and_then(|mut m| m.insert("probe", 0u64).map(|_| ()).map_err(Into::into))
            .is_ok();
        ok && txn.commit().is_ok()
    }

    pub(super) fn run_committer(&self, rx: &Receiver<Job>) {
        loop {
            let first = if self.broken.load(Ordering::Acquire) {
                match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match rx.recv() {
                    Ok(job) => Some(job),
                    Err(_) => return,
                }
            };
            if self.broken.load(Ordering::Acquire) {
                // Decisions are refused while broken, so nothing should arrive here; if
                // something does, it is refused and its pending state dropped.
                if let Some(job) = first {
                    if job.seq != 0 {
                        let mut shard = lock(self.shard(&job.card));
                        if shard
                            .pending
                            .get(&job.card)
                            .is_some_and(|(_, s)| *s == job.seq)
                        {
                            shard.pending.remove(&job.card);
                            shard.version += 1;
                        }
                    }
                    let _ = job.reply.send(Err(CounterError::Unavailable(
                        "the counter store cannot write".into(),
                    )));
                }
                if self.probe() {
                    self.broken.store(false, Ordering::Release);
                    tracing::warn!("counter store writable again; verification resumes");
                }
                continue;
            }
            let Some(first) = first else { continue };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            match self.write(&batch) {
                Ok(()) => {
                    let changes = batch.iter().filter(|j| j.write.is_some()).count();
                    self.metrics.commits.inc();
                    self.metrics.changes.inc_by(changes as u64);
                    self.committed_batch(batch);
                }
                Err(e) => {
                    tracing::error!(error = %e, "counter store commit failed; refusing verification until it is writable");
                    self.failed_batch(batch, rx, &e.to_string());
                }
            }
        }
    }
}
