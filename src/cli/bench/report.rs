//! What one operation measured, and how it is printed.

use std::collections::BTreeMap;
use std::time::Duration;

use super::cards::{Expected, Workload};
use crate::protocol::Status;

/// What one operation measured.
#[derive(Debug, Default)]
pub(super) struct Report {
    /// Latency of every expected answer, in microseconds.
    pub(super) latencies_us: Vec<u32>,
    /// Latency of the expected `ok` answers alone (the others may wait for a commit).
    pub(super) ok_latencies_us: Vec<u32>,
    /// Expected answers by status (`ok`, `verification_failed`, `pin_locked`).
    pub(super) answers: BTreeMap<String, u64>,
    /// Cards the run locked (a predicted locking failure answered as predicted).
    pub(super) cards_locked: u64,
    /// Everything else: answers other than predicted, and client-side failures.
    pub(super) errors: BTreeMap<String, u64>,
    pub(super) elapsed: Duration,
}

impl Report {
    /// Counts one answer against the prediction.
    pub(super) fn record(&mut self, status: u16, expected: Expected, latency: Duration) {
        let name = Status::from_code(status)
            .map_or_else(|| format!("status_{status}"), |s| s.name().to_owned());
        if status == expected.status.code() {
            let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
            self.latencies_us.push(us);
            if status == Status::Ok.code() {
                self.ok_latencies_us.push(us);
            }
            if expected.locks {
                self.cards_locked += 1;
            }
            *self.answers.entry(name).or_default() += 1;
        } else {
            let what = format!("{name} (expected {})", expected.status.name());
            *self.errors.entry(what).or_default() += 1;
        }
    }

    /// Counts `n` requests lost to a client-side failure.
    pub(super) fn failed(&mut self, what: String, n: u64) {
        *self.errors.entry(what).or_default() += n;
    }

    pub(super) fn merge(&mut self, other: Report) {
        self.latencies_us.extend(other.latencies_us);
        self.ok_latencies_us.extend(other.ok_latencies_us);
        self.cards_locked += other.cards_locked;
        for (k, v) in other.answers {
            *self.answers.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    fn percentile(sorted: &[u32], p: f64) -> u32 {
        if sorted.is_empty() {
            return 0;
        }
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i.min(sorted.len() - 1)]
    }

    /// The report line (text or JSON) and the rate.
    pub(super) fn line(
        &mut self,
        operation: &str,
        mode: &str,
        workload: Option<Workload>,
        json: bool,
    ) -> (String, f64) {
        self.latencies_us.sort_unstable();
        self.ok_latencies_us.sort_unstable();
        let errors: u64 = self.errors.values().sum();
        let n = self.latencies_us.len() as u64 + errors;
        let ops = n as f64 / self.elapsed.as_secs_f64().max(1e-9);
        let p = |q| Self::percentile(&self.latencies_us, q);
        let text = if json {
            let mut row = serde_json::json!({
                "operation": operation, "mode": mode, "requests": n,
                "ops_per_sec": ops.round(), "p50_us": p(0.5), "p90_us": p(0.9),
                "p99_us": p(0.99), "p999_us": p(0.999),
                "p99_ok_us": Self::percentile(&self.ok_latencies_us, 0.99), "errors": errors,
                "errors_by_status": self.errors, "answers": self.answers,
            });
            match workload {
                Some(w) => {
                    row["workload"] = "realistic".into();
                    row["cards"] = w.cards.into();
                    row["wrong_pin_share"] = w.wrong_pin_share.into();
                    row["cards_locked"] = self.cards_locked.into();
                }
                None => row["workload"] = "fixed (best case)".into(),
            }
            row.to_string()
        } else {
            let locked = workload.map_or_else(String::new, |_| {
                format!("  cards locked {}", self.cards_locked)
            });
            format!(
                "{operation:<13} {mode:<10} {ops:>10.0} ops/s  p50 {:>6} us  p90 {:>6} us  p99 {:>6} us  p99.9 {:>6} us  errors {errors}{}{locked}",
                p(0.5),
                p(0.9),
                p(0.99),
                p(0.999),
                if self.errors.is_empty() {
                    String::new()
                } else {
                    format!(" {:?}", self.errors)
                }
            )
        };
        (text, ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_against_the_prediction() {
        let mut r = Report::default();
        let locking = Expected {
            status: Status::VerificationFailed,
            locks: true,
        };
        r.record(Status::Ok.code(), Expected::OK, Duration::from_micros(7));
        r.record(
            Status::VerificationFailed.code(),
            locking,
            Duration::from_micros(9),
        );
        r.record(Status::Ok.code(), locking, Duration::from_micros(9));
        r.elapsed = Duration::from_secs(1);
        assert_eq!(r.cards_locked, 1);
        assert_eq!(r.latencies_us, [7, 9]);
        assert_eq!(r.errors.get("ok (expected verification_failed)"), Some(&1));
        let w = Workload {
            cards: 10,
            wrong_pin_share: 0.05,
        };
        let (line, ops) = r.line("pin-verify-0", "wire", Some(w), true);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["cards"], 10);
        assert_eq!(v["wrong_pin_share"], 0.05);
        assert_eq!(v["cards_locked"], 1);
        assert_eq!(v["errors"], 1);
        assert!((ops - 3.0).abs() < 1e-9);
        let (fixed, _) = r.line("pin-verify-0", "wire", None, true);
        assert!(fixed.contains("fixed (best case)"));
    }
}
