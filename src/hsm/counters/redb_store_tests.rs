//! The one-node store as the daemon holds it ([`RedbCounters`]): its `Debug` form,
//! availability, the early verification hint, a drop that commits what was decided
//! before it, and a snapshot trusted only for its own card.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;

use super::tests::{card, commit_queued, dir, guard, later, manual, now, request, seal};
use super::*;
use crate::hsm::counters::{Attempt, CounterMetrics, PinOutcome};

fn open(d: &Path, binding: Option<Binding>) -> RedbCounters {
    RedbCounters::open(
        d,
        seal(),
        binding,
        1,
        |_| Ok(()),
        CounterMetrics::new().unwrap(),
        guard(false, 1000),
    )
    .unwrap()
}

/// The store prints its file and identity (neither is a secret), never a card.
#[test]
fn the_debug_form_names_the_file_and_the_identity() {
    let d = dir("debug");
    let store = open(&d, None);
    assert_eq!(
        format!("{store:?}"),
        format!(
            "RedbCounters({}, {})",
            d.join(identity::FILE).display(),
            store.id().to_hex()
        )
    );
    drop(store);
    let _ = std::fs::remove_dir_all(d);
}

/// Available until a commit fails (the committer's flag), and unavailable while it is.
#[test]
fn unavailable_exactly_while_the_store_is_broken() {
    let d = dir("available");
    let store = open(&d, None);
    assert!(!store.is_unavailable());
    store.core.broken.store(true, Ordering::Release);
    assert!(store.is_unavailable());
    store.core.broken.store(false, Ordering::Release);
    assert!(!store.is_unavailable());
    drop(store);
    let _ = std::fs::remove_dir_all(d);
}

/// Dropping the store closes the queue and waits for the committer: a change decided
/// just before, whose answer nobody awaited, is durable when the drop returns (the
/// file is free to reopen, and the card reads back locked), and the early hint of a
/// verification reads that locked state.
#[test]
fn a_drop_commits_what_was_decided_and_the_hint_reads_it() {
    let d = dir("drop");
    let store = open(&d, None);
    let id = store.id();
    let x = card(40);
    let pending: Vec<Decided> = (0..3)
        .map(|_| store.decide(request(x, Attempt::Pin(PinOutcome::Mismatched))))
        .collect();
    drop(store);
    drop(pending);
    let store = open(&d, Some(Binding { id, seq: 1 }));
    let hint = store
        .verification_hint(&x)
        .unwrap()
        .expect("a one-node store answers");
    assert_eq!(hint.card, x);
    assert_eq!(
        (hint.record.pin.failures, hint.record.pin.locked),
        (3, true)
    );
    assert_eq!(hint.record, store.snapshot(&x).unwrap().record);
    drop(store);
    let _ = std::fs::remove_dir_all(d);
}

/// A snapshot is trusted only for the card it was taken of: a request that carries
/// another card's snapshot (same shard, same version) is decided on its own card's
/// state, not on the other card's lock.
#[test]
fn a_snapshot_of_another_card_is_not_trusted() {
    let (core, d) = manual("other-snapshot");
    let (tx, rx) = std::sync::mpsc::channel();
    let x = CardId::from_bytes([5; 32]);
    let mut name = [5; 32];
    name[31] = 6;
    let y = CardId::from_bytes(name);
    assert_eq!(x.shard(SHARDS), y.shard(SHARDS));
    for _ in 0..3 {
        later(core.decide(request(x, Attempt::Pin(PinOutcome::Mismatched)), Some(&tx)));
    }
    commit_queued(&core, &rx);
    let seen = {
        let shard = lock(core.shard(&x));
        Snapshot {
            card: x,
            record: core.latest(&shard, &x).unwrap(),
            version: shard.version,
        }
    };
    assert!(seen.record.pin.locked, "the other card is locked");
    let mut r = request(y, Attempt::Pin(PinOutcome::Matched));
    r.seen = Some(seen);
    assert_eq!(now(core.decide(r, Some(&tx))).verdict, Verdict::AsComputed);
    let _ = std::fs::remove_dir_all(d);
}
