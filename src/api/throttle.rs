//! Throttling of failed authentication: `POST /token` with wrong credentials and calls
//! whose token, timestamp or signature do not check. Each failure counts against two
//! keys, the source address and the api key the request named (only a registered
//! client's: `http::pipeline::throttle_keys`); a key with
//! `auth_failures` failures within `auth_failure_window` is refused for the rest of that
//! window, right credentials or not (`429` with `Retry-After`), so guessing a secret or
//! a signature costs a window per handful of guesses from each address and for each
//! api key.
//!
//! Pure: the time comes in as a parameter. Memory is bounded: at most [`MAX_KEYS`] keys
//! are tracked; past that, expired entries are dropped first, and if none has expired a
//! new key is not tracked (the keys already throttled stay throttled).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Most keys tracked at once.
pub const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start_ms: u64,
    failures: u32,
}

/// Failure counts per key.
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window_ms: u64,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    /// `limit` failures per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whole seconds until the first of `keys` that is throttled may try again; `None`
    /// if none is.
    pub fn retry_after(&self, keys: &[&str], now_ms: u64) -> Option<u64> {
        let entries = self.entries();
        keys.iter()
            .filter_map(|k| entries.get(*k))
            .filter(|e| e.failures >= self.limit)
            .map(|e| e.window_start_ms.saturating_add(self.window_ms))
            .filter(|end| *end > now_ms)
            .max()
            .map(|end| (end - now_ms).div_ceil(1000).max(1))
    }

    /// Counts a failure against each of `keys`.
    pub fn failure(&self, keys: &[&str], now_ms: u64) {
        let mut entries = self.entries();
        for key in keys {
            if !entries.contains_key(*key) && entries.len() >= MAX_KEYS {
                let window = self.window_ms;
                entries.retain(|_, e| e.window_start_ms.saturating_add(window) > now_ms);
                if entries.len() >= MAX_KEYS {
                    continue;
                }
            }
            let e = entries.entry((*key).to_owned()).or_insert(Entry {
                window_start_ms: now_ms,
                failures: 0,
            });
            if e.window_start_ms.saturating_add(self.window_ms) <= now_ms {
                *e = Entry {
                    window_start_ms: now_ms,
                    failures: 0,
                };
            }
            e.failures = e.failures.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_throttled_for_the_rest_of_its_window() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let (ip, key) = ("ip:127.0.0.1", "key:k");
        for i in 0..3 {
            assert_eq!(t.retry_after(&[ip, key], 1000 + i), None);
            t.failure(&[ip, key], 1000 + i);
        }
        assert_eq!(t.retry_after(&[ip], 1_500), Some(60));
        assert_eq!(t.retry_after(&["key:k"], 30_000), Some(31));
        assert_eq!(t.retry_after(&["ip:10.0.0.1"], 30_000), None);
        // The window ends: tries again, and counting starts over.
        assert_eq!(t.retry_after(&[ip, key], 61_000), None);
        t.failure(&[ip], 61_000);
        assert_eq!(t.retry_after(&[ip], 61_001), None);
    }

    #[test]
    fn memory_is_bounded() {
        let t = Throttle::new(1, Duration::from_secs(1));
        for i in 0..MAX_KEYS + 10 {
            t.failure(&[&format!("ip:{i}")], 0);
        }
        assert_eq!(t.entries().len(), MAX_KEYS);
        // Full and nothing expired: a new key is not tracked, the throttled stay so.
        t.failure(&["ip:early"], 500);
        assert!(!t.entries().contains_key("ip:early"));
        assert!(t.retry_after(&["ip:0"], 500).is_some());
        // Once the window passed, expired entries make room.
        t.failure(&["ip:new"], 5_000);
        assert!(t.entries().contains_key("ip:new"));
        assert_eq!(t.entries().len(), 1);
    }

    /// A full table still counts the failures of the keys it tracks: only a new key is
    /// turned away.
    #[test]
    fn a_full_table_keeps_counting_its_keys() {
        let t = Throttle::new(2, Duration::from_secs(60));
        for i in 0..MAX_KEYS {
            t.failure(&[&format!("ip:{i}")], 0);
        }
        assert!(t.retry_after(&["ip:7"], 1).is_none());
        t.failure(&["ip:7"], 1);
        assert_eq!(t.retry_after(&["ip:7"], 1), Some(60));
    }

    /// A window is `[start, start + window)`: at the instant it ends the key may try
    /// again, its count starts over from that failure, and, when the table is full,
    /// its entry is one that makes room.
    #[test]
    fn a_window_ends_exactly_at_start_plus_window() {
        let t = Throttle::new(3, Duration::from_secs(60));
        for i in 0..3 {
            t.failure(&["ip:a"], 1_000 + i);
        }
        assert_eq!(t.retry_after(&["ip:a"], 60_999), Some(1));
        assert_eq!(t.retry_after(&["ip:a"], 61_000), None);
        // Three new failures from the end instant on: throttled again, for a window
        // that started at 61,000.
        for i in 0..3 {
            t.failure(&["ip:a"], 61_000 + i);
        }
        assert_eq!(t.retry_after(&["ip:a"], 61_003), Some(60));

        let full = Throttle::new(1, Duration::from_secs(1));
        for i in 0..MAX_KEYS {
            full.failure(&[&format!("ip:{i}")], 0);
        }
        full.failure(&["ip:at-the-end"], 1_000);
        assert!(full.entries().contains_key("ip:at-the-end"));
        assert_eq!(full.entries().len(), 1);
    }
}
