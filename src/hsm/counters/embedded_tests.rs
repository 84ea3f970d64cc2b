#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::mpsc::channel;

use super::*;
use crate::crypto::ClearKey;
use crate::hsm::counters::rules::Dcvv2Outcome;
use crate::hsm::counters::{Attempt, Limits, PinOutcome, Verdict};
use crate::hsm::guard::GuardPolicy;

pub(super) fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cofre-counters-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub(super) fn seal() -> Seal {
    Seal::new(&ClearKey::from_bytes(&[1; 32]).unwrap()).unwrap()
}

pub(super) fn guard(refuse: bool, per_minute: u64) -> Guard {
    Guard::new(
        GuardPolicy {
            failures_per_minute: per_minute,
            refuse,
        },
        None,
    )
}

pub(super) fn open_core(db: Database, id: StoreId, guard: Guard) -> Core {
    Core::new(db, id, seal(), CounterMetrics::new().unwrap(), guard).unwrap()
}

/// A core with no committer: the test commits (or fails) the queue itself.
pub(super) fn manual(name: &str) -> (Core, PathBuf) {
    let d = dir(name);
    let (db, id) = identity::open_bound(&d, &seal(), None, 1, |_| Ok(())).unwrap();
    (open_core(db, id, guard(false, 1000)), d)
}

/// Commits everything queued, as the committer would.
pub(super) fn commit_queued(core: &Core, rx: &std::sync::mpsc::Receiver<Job>) {
    let batch: Vec<Job> = rx.try_iter().collect();
    core.write(&batch).unwrap();
    core.committed_batch(batch);
}

pub(super) fn card(n: u8) -> CardId {
    CardId::from_bytes([n; 32])
}

pub(super) const LIMITS: Limits = Limits { pin: 3, dcvv2: 3 };

pub(super) fn request(c: CardId, attempt: Attempt) -> Request {
    Request {
        card: c,
        attempt,
        limits: LIMITS,
        now: 50,
        seen: None,
    }
}

pub(super) fn now(d: Decided) -> Decision {
    match d {
        Decided::Now(r) => r.unwrap(),
        Decided::AfterCommit(_) => panic!("expected an answer now"),
    }
}

pub(super) fn later(d: Decided) -> oneshot::Receiver<Result<Decision, CounterError>> {
    match d {
        Decided::AfterCommit(rx) => rx,
        Decided::Now(r) => panic!("expected to wait for a commit, got {r:?}"),
    }
}

#[test]
fn one_card_is_decided_in_arrival_order_and_answered_after_its_commit() {
    let (core, d) = manual("order");
    let (tx, rx) = channel();
    let x = card(1);
    let mismatch = Attempt::Pin(PinOutcome::Mismatched);
    // Ten wrong PINs and then the right one, all decided before any commit.
    let mut waiting: Vec<_> = (0..10)
        .map(|_| later(core.decide(request(x, mismatch), Some(&tx))))
        .collect();
    waiting.push(later(
        core.decide(request(x, Attempt::Pin(PinOutcome::Matched)), Some(&tx)),
    ));
    // Nothing is answered before the commit.
    for w in &mut waiting {
        assert!(w.try_recv().is_err());
    }
    let batch: Vec<Job> = rx.try_iter().collect();
    assert_eq!(batch.len(), 11, "every decision waits for the commit");
    assert_eq!(
        batch.iter().filter(|j| j.write.is_some()).count(),
        3,
        "only the three counted failures change the card"
    );
    // Another card, untouched, answers at once and queues nothing.
    let other = now(core.decide(
        request(card(2), Attempt::Pin(PinOutcome::Matched)),
        Some(&tx),
    ));
    assert_eq!(other.verdict, Verdict::AsComputed);
    assert!(rx.try_recv().is_err());

    core.write(&batch).unwrap();
    core.committed_batch(batch);
    let verdicts: Vec<Verdict> = waiting
        .into_iter()
        .map(|mut w| w.try_recv().unwrap().unwrap().verdict)
        .collect();
    assert_eq!(&verdicts[..3], &[Verdict::Failed; 3]);
    assert!(
        verdicts[3..].iter().all(|v| *v == Verdict::Locked),
        "{verdicts:?}"
    );
    let durable = core.committed(&x).unwrap();
    assert_eq!((durable.pin.failures, durable.pin.locked), (3, true));
    assert!(
        lock(core.shard(&x)).pending.is_empty(),
        "nothing pending after the commit"
    );
    // Once committed, a locked card answers at once.
    let d2 = now(core.decide(request(x, Attempt::Pin(PinOutcome::Matched)), Some(&tx)));
    assert_eq!(d2.verdict, Verdict::Locked);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_stale_snapshot_is_not_trusted() {
    let (core, d) = manual("stale");
    let (tx, rx) = channel();
    let x = card(3);
    let store_snapshot = |c: &Core| {
        let shard = lock(c.shard(&x));
        Snapshot {
            card: x,
            record: c.latest(&shard, &x).unwrap(),
            version: shard.version,
        }
    };
    let seen = store_snapshot(&core);
    // Two connections read the card (unlocked, no failures) before either decides:
    // each decision still counts on top of the other's, pending, failure.
    for _ in 0..4 {
        let mut r = request(x, Attempt::Pin(PinOutcome::Mismatched));
        r.seen = Some(seen);
        later(core.decide(r, Some(&tx)));
    }
    let pending = lock(core.shard(&x)).pending.get(&x).map(|(rec, _)| *rec);
    assert_eq!(
        pending.map(|p| (p.pin.failures, p.pin.locked)),
        Some((3, true))
    );
    let batch: Vec<Job> = rx.try_iter().collect();
    assert_eq!(batch.iter().filter(|j| j.write.is_some()).count(), 3);
    assert_eq!(
        batch.last().map(|j| j.decision.verdict),
        Some(Verdict::Locked)
    );
    core.write(&batch).unwrap();
    core.committed_batch(batch);
    // The snapshot (unlocked) was taken before the card locked: the decision reads again.
    let mut r = request(x, Attempt::Pin(PinOutcome::Matched));
    r.seen = Some(seen);
    assert_eq!(now(core.decide(r, Some(&tx))).verdict, Verdict::Locked);
    // A fresh snapshot is used as is.
    let mut r = request(x, Attempt::Pin(PinOutcome::Matched));
    r.seen = Some(store_snapshot(&core));
    assert_eq!(now(core.decide(r, Some(&tx))).verdict, Verdict::Locked);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_failed_commit_refuses_its_decisions_and_everything_behind_them() {
    let (core, d) = manual("fail");
    let (tx, rx) = channel();
    let first = later(core.decide(
        request(card(4), Attempt::Pin(PinOutcome::Mismatched)),
        Some(&tx),
    ));
    let batch: Vec<Job> = rx.try_iter().collect();
    let behind = later(core.decide(
        request(card(4), Attempt::Pin(PinOutcome::Mismatched)),
        Some(&tx),
    ));
    let other = later(core.decide(request(card(5), Attempt::Dcvv2Enable(true)), Some(&tx)));
    core.failed_batch(batch, &rx, "disk full");
    for mut w in [first, behind, other] {
        assert!(matches!(
            w.try_recv().unwrap(),
            Err(CounterError::Unavailable(_))
        ));
    }
    assert!(rx.try_recv().is_err(), "the queue was drained");
    assert!(core.shards.iter().all(|s| lock(s).pending.is_empty()));
    assert_eq!(core.committed(&card(4)).unwrap(), CardRecord::default());
    // Refused while broken; a probe write clears it.
    assert!(matches!(
        core.decide(request(card(4), Attempt::PinReset), Some(&tx)),
        Decided::Now(Err(CounterError::Unavailable(_)))
    ));
    assert!(core.probe());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_record_that_fails_its_mac_is_a_locked_card_until_reset() {
    let d = dir("mac");
    let x = card(6);
    // Written offline before the store opens: a record sealed for another card, copied
    // under this card's name.
    let (db, id) = identity::open_bound(&d, &seal(), None, 1, |_| Ok(())).unwrap();
    {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(RECORDS).unwrap();
            let moved = seal().seal(id, &card(7), &CardRecord::default());
            t.insert(&x.as_bytes()[..], &moved[..]).unwrap();
        }
        txn.commit().unwrap();
    }
    let core = open_core(db, id, guard(false, 9));
    let (tx, rx) = channel();
    let seen = core.latest(&lock(core.shard(&x)), &x).unwrap();
    assert_eq!(seen, CardRecord::tampered());
    assert_eq!(core.metrics.mac_failures.get(), 1);
    let d1 = now(core.decide(request(x, Attempt::Pin(PinOutcome::Matched)), Some(&tx)));
    assert_eq!(d1.verdict, Verdict::Locked);
    let d2 = now(core.decide(
        request(x, Attempt::Dcvv2(Dcvv2Outcome::Matched(9))),
        Some(&tx),
    ));
    assert_eq!(d2.verdict, Verdict::Locked);
    // A reset writes a sealed record again.
    later(core.decide(request(x, Attempt::PinReset), Some(&tx)));
    later(core.decide(request(x, Attempt::Dcvv2Enable(false)), Some(&tx)));
    commit_queued(&core, &rx);
    let after = core.committed(&x).unwrap();
    assert!(!after.pin.locked && !after.dcvv2.enabled);
    let _ = std::fs::remove_dir_all(d);
}

/// Which cards have a record is read at start and kept by the committer, so a card
/// with none is answered from memory, and one with a record from the store.
#[test]
fn the_index_of_recorded_cards_follows_the_commits() {
    let (core, d) = manual("index");
    let (tx, rx) = channel();
    let x = card(8);
    later(core.decide(request(x, Attempt::Dcvv2Enable(true)), Some(&tx)));
    commit_queued(&core, &rx);
    assert!(lock(core.shard(&x)).recorded.contains(&x));
    let id = core.id;
    drop(core);
    let (db, _) =
        identity::open_bound(&d, &seal(), Some(Binding { id, seq: 1 }), 1, |_| Ok(())).unwrap();
    let core = open_core(db, id, guard(false, 9));
    assert!(lock(core.shard(&x)).recorded.contains(&x), "read at start");
    assert!(
        core.latest(&lock(core.shard(&x)), &x)
            .unwrap()
            .dcvv2
            .enabled
    );
    assert!(!lock(core.shard(&card(9))).recorded.contains(&card(9)));
    // Back to the default state: the record is removed, and known to be.
    later(core.decide(request(x, Attempt::Dcvv2Enable(false)), Some(&tx)));
    commit_queued(&core, &rx);
    assert!(!lock(core.shard(&x)).recorded.contains(&x));
    assert_eq!(core.committed(&x).unwrap(), CardRecord::default());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn the_guard_is_decided_in_order_too() {
    let d = dir("guard");
    let (db, id) = identity::open_bound(&d, &seal(), None, 1, |_| Ok(())).unwrap();
    let core = open_core(db, id, guard(true, 2));
    let (tx, _rx) = channel();
    // Failures on three cards trip it (2 allowed per minute); the fourth card's right
    // PIN, decided after, is refused.
    let verdicts: Vec<Verdict> = (10..13)
        .map(|n| {
            match core.decide(
                request(card(n), Attempt::Pin(PinOutcome::Mismatched)),
                Some(&tx),
            ) {
                Decided::AfterCommit(_) => Verdict::Failed,
                Decided::Now(r) => r.unwrap().verdict,
            }
        })
        .collect();
    assert_eq!(verdicts, [Verdict::Failed; 3]);
    let d4 = now(core.decide(
        request(card(13), Attempt::Pin(PinOutcome::Matched)),
        Some(&tx),
    ));
    assert_eq!(d4.verdict, Verdict::Guarded);
    core.guard.reset();
    let d5 = now(core.decide(
        request(card(13), Attempt::Pin(PinOutcome::Matched)),
        Some(&tx),
    ));
    assert_eq!(d5.verdict, Verdict::AsComputed);
    let _ = std::fs::remove_dir_all(d);
}

/// The real committer: many threads, one card and many cards; exact counts, group
/// commit, and the data read back after reopening.
#[test]
fn concurrent_decisions_with_the_committer_and_reopening() {
    let d = dir("threads");
    let open = |binding| {
        RedbCounters::open(
            &d,
            seal(),
            binding,
            1,
            |_| Ok(()),
            CounterMetrics::new().unwrap(),
            guard(false, u64::MAX),
        )
        .unwrap()
    };
    let store = Arc::new(open(None));
    let id = store.id();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let threads: Vec<_> = (0..16u8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let mut out = Vec::new();
                for i in 0..50u8 {
                    // Card 1: everyone's target. Cards 100+t: one per thread.
                    let c = if i % 2 == 0 { card(1) } else { card(100 + t) };
                    let dec = store.decide(request(c, Attempt::Pin(PinOutcome::Mismatched)));
                    out.push((c, rt.block_on(dec.resolved()).unwrap().verdict));
                }
                out
            })
        })
        .collect();
    let results: Vec<(CardId, Verdict)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let failed = |c: CardId| {
        results
            .iter()
            .filter(|(k, v)| *k == c && *v == Verdict::Failed)
            .count()
    };
    assert_eq!(failed(card(1)), 3, "exactly the limit is evaluated");
    for t in 0..16u8 {
        assert_eq!(failed(card(100 + t)), 3);
    }
    assert!(
        results
            .iter()
            .all(|(_, v)| matches!(v, Verdict::Failed | Verdict::Locked))
    );
    let m = &store.core.metrics;
    assert_eq!(m.changes.get(), 17 * 3);
    assert_eq!(m.lockouts.get(), 17);
    let snap = rt.block_on(async { store.snapshot(&card(1)) }).unwrap();
    assert_eq!(
        (snap.record.pin.failures, snap.record.pin.locked),
        (3, true)
    );
    drop(store);
    // Reopened (bound to its identity): the old data reads back.
    let store = open(Some(Binding { id, seq: 1 }));
    let back = store.snapshot(&card(105)).unwrap().record.pin;
    assert_eq!(
        (back.failures, back.locked, back.last_failure),
        (3, true, 50)
    );
    assert_eq!(
        store.snapshot(&card(9)).unwrap().record,
        CardRecord::default()
    );
    drop(store);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn damaged_or_foreign_files_are_clear_errors() {
    let d = dir("damaged");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("counters.redb"), b"not a database at all").unwrap();
    let e = identity::open_bound(&d, &seal(), None, 1, |_| Ok(()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("counters.redb"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}
