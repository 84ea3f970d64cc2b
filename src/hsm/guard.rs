//! The global brute-force guard: PIN failures per minute across all cards. Over the
//! configured rate it raises an alert (a metric and a log line) and, if configured,
//! refuses PIN verification until the security-officer role resets it. In memory: a
//! restart clears it (the per-card counters, which are durable, still hold).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The guard.
#[derive(Debug, Default)]
pub struct Guard {
    minute: AtomicU64,
    failures: AtomicU64,
    tripped: AtomicBool,
    alert: Option<prometheus::IntGauge>,
}

impl Guard {
    /// A guard that mirrors its state into `alert` (1 tripped, 0 not).
    pub fn with_alert(alert: prometheus::IntGauge) -> Self {
        Self {
            alert: Some(alert),
            ..Self::default()
        }
    }

    /// Counts one failure at `now` (Unix seconds); returns `true` when this failure
    /// trips the guard.
    pub fn record_failure(&self, now: u64, per_minute: u64) -> bool {
        let minute = now / 60;
        if self.minute.swap(minute, Ordering::AcqRel) != minute {
            self.failures.store(0, Ordering::Release);
        }
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let tripped = n > per_minute && !self.tripped.swap(true, Ordering::AcqRel);
        if tripped && let Some(a) = &self.alert {
            a.set(1);
        }
        tripped
    }

    /// Whether the alert is raised.
    pub fn is_tripped(&self) -> bool {
        self.tripped.load(Ordering::Acquire)
    }

    /// Lowers the alert.
    pub fn reset(&self) {
        self.tripped.store(false, Ordering::Release);
        self.failures.store(0, Ordering::Release);
        if let Some(a) = &self.alert {
            a.set(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_once_over_the_rate_and_resets() {
        let g = Guard::default();
        let trips: Vec<bool> = (0..5).map(|_| g.record_failure(120, 3)).collect();
        assert_eq!(trips, [false, false, false, true, false]);
        assert!(g.is_tripped());
        g.reset();
        assert!(!g.is_tripped());
        // A new minute starts a new count.
        assert!(!g.record_failure(181, 3));
    }
}
