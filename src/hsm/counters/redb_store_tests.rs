//! The one-node store as the daemon holds it ([`RedbCounters`]): its `Debug` form,
//! availability, the early verification hint, and a drop that commits what was
//! decided before it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;

use super::tests::{card, dir, guard, request, seal};
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
