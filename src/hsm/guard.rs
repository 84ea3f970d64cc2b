//! The global brute-force guard: PIN failures per calendar minute (Unix time / 60)
//! across all cards. Over the configured rate it raises an alert (a metric and a log
//! line) and, if configured, refuses PIN verification until the security-officer role
//! resets it. In memory: a restart clears it (the per-card counters, which are
//! durable, still hold). The time is an input, so the window is tested with any clock.
//!
//! The counter store consults it in each decision ([`super::counters::rules`]), so a
//! verification decided after the failure that trips it is refused whatever its PIN.
//!
//! A pair of daemons on one shared store counts together: the shared store reports the
//! failures the other daemons recorded in the minute ([`Guard::observe_others`]), and the
//! guard trips when its own and theirs together exceed the rate. A reset lowers this
//! daemon's alert and discounts what the others had counted up to then.

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
/// One calendar minute's failures.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    minute: u64,
    /// Counted by this daemon.
    own: u64,
    /// Counted by the other daemons sharing the store (as last observed).
    others: u64,
    /// `others` at the last reset in this minute (not counted again).
    others_base: u64,
}

impl Window {
    fn at(&mut self, minute: u64) -> &mut Self {
        if self.minute != minute {
            *self = Window {
                minute,
                ..Window::default()
            };
        }
        self
    }

    fn total(&self) -> u64 {
        self.own + self.others.saturating_sub(self.others_base)
    }
}

#[derive(Debug)]
pub struct Guard {
    policy: GuardPolicy,
    /// The current minute and the failures counted in it.
    window: Mutex<Window>,
    tripped: AtomicBool,
    alert: Option<prometheus::IntGauge>,
}

impl Guard {
    /// A guard with `policy` that mirrors its state into `alert` (1 tripped, 0 not).
    pub fn new(policy: GuardPolicy, alert: Option<prometheus::IntGauge>) -> Self {
        Self {
            policy,
            window: Mutex::new(Window::default()),
            tripped: AtomicBool::new(false),
            alert,
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        match self.window.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Counts one failure at `now` (Unix seconds); returns `true` when this failure
    /// trips the guard.
    pub fn record_failure(&self, now: u64) -> bool {
        let n = {
            let mut w = self.window();
            let w = w.at(now / 60);
            w.own += 1;
            w.total()
        };
        self.trip_if_over(n)
    }

    /// Sets the failures the other daemons sharing the store counted in the minute of
    /// `now`; returns `true` when that trips the guard.
    pub fn observe_others(&self, now: u64, failures: u64) -> bool {
        let n = {
            let mut w = self.window();
            let w = w.at(now / 60);
            w.others = failures.max(w.others);
            w.total()
        };
        self.trip_if_over(n)
    }

    fn trip_if_over(&self, n: u64) -> bool {
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
        {
            let mut w = self.window();
            w.own = 0;
            w.others_base = w.others;
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
    fn failures_of_the_other_daemons_count_in_the_same_minute() {
        let g = guard(3);
        assert!(!g.record_failure(60));
        assert!(!g.observe_others(61, 2), "1 own + 2 others = 3: still fine");
        assert!(g.record_failure(62), "the fourth of the pair trips it");
        g.reset();
        assert!(!g.observe_others(63, 2), "the others' 2 were discounted");
        assert!(!g.record_failure(64));
        assert!(!g.observe_others(65, 4), "1 own + (4 - 2) others");
        assert!(g.observe_others(66, 5), "1 own + 3 new others");
        // A new minute starts from zero for both.
        let g = guard(3);
        assert!(!g.observe_others(100, 3));
        assert!(!g.observe_others(120, 3), "minute 2's first observation");
        assert!(g.record_failure(121));
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
