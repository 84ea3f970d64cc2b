//! The global brute-force guard: PIN failures per calendar minute (Unix time / 60)
//! across all cards. Over the configured rate it raises an alert (a metric and a log
//! line) and, if configured, refuses PIN verification until the security-officer role
//! resets it. In memory: a restart clears it (the per-card counters, which are
//! durable, still hold). The time is an input, so the window is tested with any clock.
//!
//! The counter store consults it in each decision ([`super::counters::rules`]), so a
//! verification decided after the failure that trips it is refused whatever its PIN.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the guard watches for and does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardPolicy {
    /// Failures in one minute that are still fine; one more trips the guard.
    pub failures_per_minute: u64,
    /// Whether a tripped guard refuses PIN verification.
    pub refuse: bool,
}

/// The guard.
#[derive(Debug)]
pub struct Guard {
    policy: GuardPolicy,
    /// The current minute and the failures counted in it.
    window: Mutex<(u64, u64)>,
    tripped: AtomicBool,
    alert: Option<prometheus::IntGauge>,
}

impl Guard {
    /// A guard with `policy` that mirrors its state into `alert` (1 tripped, 0 not).
    pub fn new(policy: GuardPolicy, alert: Option<prometheus::IntGauge>) -> Self {
        Self {
            policy,
            window: Mutex::new((0, 0)),
            tripped: AtomicBool::new(false),
            alert,
        }
    }

    /// Counts one failure at `now` (Unix seconds); returns `true` when this failure
    /// trips the guard.
    pub fn record_failure(&self, now: u64) -> bool {
        let minute = now / 60;
        let n = {
            let mut w = match self.window.lock() {
                Ok(w) => w,
                Err(poisoned) => poisoned.into_inner(),
            };
            if w.0 != minute {
                *w = (minute, 0);
            }
            w.1 += 1;
            w.1
        };
        let tripped =
            n > self.policy.failures_per_minute && !self.tripped.swap(true, Ordering::AcqRel);
        if tripped && let Some(a) = &self.alert {
            a.set(1);
        }
        tripped
    }

    /// Whether the alert is raised.
    pub fn is_tripped(&self) -> bool {
        self.tripped.load(Ordering::Acquire)
    }

    /// Whether PIN verification is refused now.
    pub fn refusing(&self) -> bool {
        self.policy.refuse && self.is_tripped()
    }

    /// Lowers the alert and starts counting afresh.
    pub fn reset(&self) {
        self.tripped.store(false, Ordering::Release);
        match self.window.lock() {
            Ok(mut w) => w.1 = 0,
            Err(poisoned) => poisoned.into_inner().1 = 0,
        }
        if let Some(a) = &self.alert {
            a.set(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(per_minute: u64) -> Guard {
        Guard::new(
            GuardPolicy {
                failures_per_minute: per_minute,
                refuse: true,
            },
            None,
        )
    }

    #[test]
    fn trips_once_over_the_rate_and_resets() {
        let g = guard(3);
        let trips: Vec<bool> = (0..5).map(|_| g.record_failure(120)).collect();
        assert_eq!(trips, [false, false, false, true, false]);
        assert!(g.is_tripped() && g.refusing());
        g.reset();
        assert!(!g.is_tripped());
        assert!(!g.record_failure(121), "a reset starts counting afresh");
    }

    /// The window is the calendar minute: failures spread over one whole minute add up
    /// (a window shorter than a minute would not trip here), and the first second of
    /// the next minute starts again (a window without rollover would trip here).
    #[test]
    fn the_window_is_one_calendar_minute() {
        let g = guard(3);
        for t in [60, 75, 90] {
            assert!(!g.record_failure(t));
        }
        assert!(g.record_failure(119), "4 failures in minute 1 (60..=119)");

        let g = guard(3);
        for t in [100, 110, 119] {
            assert!(!g.record_failure(t));
        }
        for t in [120, 121, 179] {
            assert!(!g.record_failure(t), "minute 2 counts from zero (t = {t})");
        }
        assert!(g.record_failure(179), "the fourth of minute 2 trips it");
        assert!(g.is_tripped());
    }

    #[test]
    fn an_alert_only_guard_never_refuses() {
        let g = Guard::new(
            GuardPolicy {
                failures_per_minute: 0,
                refuse: false,
            },
            None,
        );
        assert!(g.record_failure(1));
        assert!(g.is_tripped() && !g.refusing());
    }
}
