//! A Bloom filter of the idempotency keys recorded in this database, so that a call with
//! a fresh key (nearly every call) skips the database lookup: "not in the filter" means
//! "never recorded". A key in the filter (or a false positive, under 1% at ten million
//! keys) is looked up as before. Purged keys stay in the filter: they only cost a lookup.
//!
//! SQLite only, where this process's writer records every key: the writer adds each key
//! once its transaction committed and before the call is answered, and the keys already
//! in the database are loaded at start (until then every call is looked up). Because a
//! call holds its key in this process's in-flight set until it is answered, a repeat
//! either meets that set (`request_in_progress`) or the filter.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// 2^27 bits (16 MiB).
const BITS_LOG2: u32 = 27;
/// Hash functions.
const K: u64 = 4;

/// The filter.
#[derive(Debug)]
pub struct KeyFilter {
    bits: Box<[AtomicU64]>,
    hasher: RandomState,
    ready: AtomicBool,
}

impl Default for KeyFilter {
    fn default() -> Self {
        Self {
            bits: (0..(1usize << (BITS_LOG2 - 6)))
                .map(|_| AtomicU64::new(0))
                .collect(),
            hasher: RandomState::new(),
            ready: AtomicBool::new(false),
        }
    }
}

impl KeyFilter {
    fn positions(&self, client_id: &str, key: &str) -> impl Iterator<Item = u64> {
        let h = self.hasher.hash_one((client_id, key));
        let (h1, h2) = (h, h.rotate_left(32) | 1);
        let mask = (1u64 << BITS_LOG2) - 1;
        (0..K).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & mask)
    }

    /// Adds a recorded key.
    pub fn insert(&self, client_id: &str, key: &str) {
        for p in self.positions(client_id, key) {
            self.bits[usize::try_from(p >> 6).unwrap_or(0)]
                .fetch_or(1 << (p & 63), Ordering::SeqCst);
        }
    }

    /// Whether the key may have been recorded (always, until the start-up load is done).
    pub fn may_contain(&self, client_id: &str, key: &str) -> bool {
        !self.ready.load(Ordering::SeqCst)
            || self.positions(client_id, key).all(|p| {
                self.bits[usize::try_from(p >> 6).unwrap_or(0)].load(Ordering::SeqCst)
                    & (1 << (p & 63))
                    != 0
            })
    }

    /// The keys recorded before start are all in.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::KeyFilter;

    #[test]
    fn no_false_negative_and_not_ready_means_maybe() {
        let f = KeyFilter::default();
        assert!(
            f.may_contain("a", "r:1"),
            "not ready: every key may be recorded"
        );
        f.set_ready();
        assert!(!f.may_contain("a", "r:1"));
        for i in 0..10_000 {
            f.insert("a", &format!("r:{i}"));
        }
        assert!((0..10_000).all(|i| f.may_contain("a", &format!("r:{i}"))));
        let false_positives = (10_000..20_000)
            .filter(|i| f.may_contain("a", &format!("r:{i}")))
            .count();
        assert!(false_positives < 10, "{false_positives}");
        assert!(!f.may_contain("b", "r:1"), "keys are per client");
    }
}
