//! The committer's own promises, each pinned by a test that fails when it is broken:
//! a commit drops only the pending states it covered, a failed commit makes every
//! earlier snapshot stale, a change that reaches a broken committer is refused and
//! dropped, and a batch carries at most `MAX_BATCH` changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;

use super::tests::{card, commit_queued, guard, later, manual, open_core, request};
use super::*;
use crate::hsm::counters::{Attempt, PinOutcome, Verdict};

const WRONG: Attempt = Attempt::Pin(PinOutcome::Mismatched);

/// Two wrong PINs for one card, only the first committed: the second is still
/// pending, so the third is decided on top of it (3 failures, locked), not on the
/// committed record (which would give 2: a count going backwards).
#[test]
fn a_commit_drops_only_the_pending_state_it_covers() {
    let (core, d) = manual("partial");
    let (tx, rx) = channel();
    let x = card(30);
    let first = later(core.decide(request(x, WRONG), Some(&tx)));
    let second = later(core.decide(request(x, WRONG), Some(&tx)));
    let only_first = vec![rx.try_recv().unwrap()];
    core.write(&only_first).unwrap();
    core.committed_batch(only_first);
    let pending = lock(core.shard(&x)).pending.get(&x).map(|(r, _)| r.pin);
    assert_eq!(
        pending.map(|p| p.failures),
        Some(2),
        "the later change stays"
    );
    let third = later(core.decide(request(x, WRONG), Some(&tx)));
    commit_queued(&core, &rx);
    let verdicts: Vec<Verdict> = [first, second, third]
        .into_iter()
        .map(|mut w| w.try_recv().unwrap().unwrap().verdict)
        .collect();
    assert_eq!(verdicts, [Verdict::Failed; 3]);
    let durable = core.committed(&x).unwrap().pin;
    assert_eq!((durable.failures, durable.locked), (3, true));
    assert!(lock(core.shard(&x)).pending.is_empty());
    let _ = std::fs::remove_dir_all(d);
}

/// A snapshot taken while a change was pending shows that change; the commit fails,
/// so the change never happened: the snapshot must not be trusted afterwards (the
/// failure bumps every shard's version), or a failure that was refused would count.
#[test]
fn a_failed_commit_makes_every_earlier_snapshot_stale() {
    let (core, d) = manual("stale-after-failure");
    let (tx, rx) = channel();
    let x = card(31);
    let refused = later(core.decide(request(x, WRONG), Some(&tx)));
    let seen = {
        let shard = lock(core.shard(&x));
        Snapshot {
            card: x,
            record: core.latest(&shard, &x).unwrap(),
            version: shard.version,
        }
    };
    assert_eq!(
        seen.record.pin.failures, 1,
        "the snapshot shows the pending change"
    );
    let batch: Vec<Job> = rx.try_iter().collect();
    core.failed_batch(batch, &rx, "disk full");
    assert!(matches!(
        { refused }.try_recv().unwrap(),
        Err(CounterError::Unavailable(_))
    ));
    // Writable again (as the committer's probe would find).
    assert!(core.probe());
    core.broken.store(false, Ordering::Release);
    let mut r = request(x, WRONG);
    r.seen = Some(seen);
    let counted = later(core.decide(r, Some(&tx)));
    commit_queued(&core, &rx);
    assert_eq!(
        { counted }.try_recv().unwrap().unwrap().verdict,
        Verdict::Failed
    );
    assert_eq!(
        core.committed(&x).unwrap().pin.failures,
        1,
        "only the committed failure"
    );
    let _ = std::fs::remove_dir_all(d);
}

/// A change that reaches the committer while the store is broken (decided just before
/// the flag was seen) is refused, its pending state dropped and the shard's version
/// bumped; the probe write then clears the flag, and the committer stops when the
/// queue is closed.
#[test]
fn a_change_that_reaches_a_broken_committer_is_refused_and_dropped() {
    let (core, d) = manual("broken");
    let (tx, rx) = channel();
    let x = card(32);
    let mut answer = later(core.decide(request(x, WRONG), Some(&tx)));
    let version = lock(core.shard(&x)).version;
    core.broken.store(true, Ordering::Release);
    drop(tx);
    core.run_committer(&rx);
    assert!(matches!(
        answer.try_recv().unwrap(),
        Err(CounterError::Unavailable(_))
    ));
    let shard = lock(core.shard(&x));
    assert!(shard.pending.is_empty(), "the refused change is dropped");
    assert_eq!(shard.version, version + 1, "snapshots of it are stale");
    drop(shard);
    assert!(
        !core.broken.load(Ordering::Acquire),
        "the probe cleared the flag"
    );
    assert_eq!(core.committed(&x).unwrap(), CardRecord::default());
    assert_eq!(core.metrics.commits.get(), 0);
    let _ = std::fs::remove_dir_all(d);
}

/// `MAX_BATCH + 1` changes queued before the committer runs: two transactions, the
/// first carrying exactly `MAX_BATCH` (group commit, and its bound).
#[test]
fn queued_changes_are_committed_in_batches_of_at_most_max_batch() {
    let (core, d) = manual("batches");
    let (tx, rx) = channel();
    let cards: Vec<CardId> = (0..=MAX_BATCH)
        .map(|i| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64).to_be_bytes());
            CardId::from_bytes(b)
        })
        .collect();
    let mut answers: Vec<_> = cards
        .iter()
        .map(|c| later(core.decide(request(*c, Attempt::Dcvv2Enable(true)), Some(&tx))))
        .collect();
    drop(tx);
    core.run_committer(&rx);
    assert_eq!(core.metrics.commits.get(), 2);
    assert_eq!(core.metrics.changes.get(), MAX_BATCH as u64 + 1);
    assert!(answers.iter_mut().all(|a| a.try_recv().unwrap().is_ok()));
    assert!(core.committed(&cards[MAX_BATCH]).unwrap().dcvv2.enabled);
    let _ = std::fs::remove_dir_all(d);
}

/// A disk whose writes fail while `failing` is set (a full or failing device under
/// redb), so the committer's failure paths meet a real storage error.
#[derive(Debug)]
struct FailingDisk {
    inner: redb::backends::InMemoryBackend,
    failing: Arc<AtomicBool>,
}

impl FailingDisk {
    fn refuse(&self) -> std::io::Result<()> {
        if self.failing.load(Ordering::Acquire) {
            return Err(std::io::Error::other("injected write failure"));
        }
        Ok(())
    }
}

impl redb::StorageBackend for FailingDisk {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.refuse()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.refuse()?;
        self.inner.write(offset, data)
    }
}

/// A core over a [`FailingDisk`] whose writes fail once the returned flag is set.
fn on_failing_disk() -> (Core, Arc<AtomicBool>) {
    let failing = Arc::new(AtomicBool::new(false));
    let disk = FailingDisk {
        inner: redb::backends::InMemoryBackend::new(),
        failing: Arc::clone(&failing),
    };
    let db = redb::Builder::new().create_with_backend(disk).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(RECORDS).unwrap();
    txn.commit().unwrap();
    let core = open_core(db, StoreId([6; 16]), guard(false, 1000));
    (core, failing)
}

/// The probe that lets a broken store decide again must be a durable write: on a disk
/// that refuses writes it fails (the table insert succeeds in memory, only the commit
/// reaches the disk), and a broken committer stays broken, refusing what reaches it.
/// The same probe on the same store succeeds while the disk takes writes (the control).
#[test]
fn the_probe_fails_while_the_disk_refuses_writes() {
    let (core, failing) = on_failing_disk();
    assert!(core.probe(), "a writable disk: the probe commits");
    failing.store(true, Ordering::Release);
    assert!(!core.probe(), "no durable write, no recovery");

    let (core, failing) = on_failing_disk();
    let (tx, rx) = channel();
    let x = card(33);
    let mut answer = later(core.decide(request(x, WRONG), Some(&tx)));
    failing.store(true, Ordering::Release);
    core.broken.store(true, Ordering::Release);
    drop(tx);
    core.run_committer(&rx);
    assert!(matches!(
        answer.try_recv().unwrap(),
        Err(CounterError::Unavailable(_))
    ));
    assert!(
        core.broken.load(Ordering::Acquire),
        "the probe failed: still broken, verification still refused"
    );
}

/// A commit that fails on the disk refuses its batch and breaks the store; redb then
/// refuses every later write transaction on that handle (its `PreviousIo`), so the
/// probe keeps failing even once the disk takes writes again: the store stays
/// closed to verification until the daemon is restarted (and reopens the file).
#[test]
fn a_failed_disk_write_breaks_the_store_until_it_is_reopened() {
    let (core, failing) = on_failing_disk();
    let (tx, rx) = channel();
    let x = card(34);
    let mut answer = later(core.decide(request(x, WRONG), Some(&tx)));
    failing.store(true, Ordering::Release);
    let batch: Vec<Job> = rx.try_iter().collect();
    let error = core.write(&batch).unwrap_err();
    core.failed_batch(batch, &rx, &error.to_string());
    assert!(matches!(
        answer.try_recv().unwrap(),
        Err(CounterError::Unavailable(_))
    ));
    assert!(core.broken.load(Ordering::Acquire));
    failing.store(false, Ordering::Release);
    assert!(!core.probe(), "redb refuses writes after an I/O error");
    assert_eq!(core.committed(&x).unwrap(), CardRecord::default());
}
