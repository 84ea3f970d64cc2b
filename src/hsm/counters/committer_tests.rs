//! The committer's own promises, each pinned by a test that fails when it is broken:
//! a commit drops only the pending states it covered, a failed commit makes every
//! earlier snapshot stale, a change that reaches a broken committer is refused and
//! dropped, and a batch carries at most `MAX_BATCH` changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;
use std::sync::mpsc::channel;

use super::tests::{card, commit_queued, later, manual, request};
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
