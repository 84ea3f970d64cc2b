//! The closed loop of the facade benchmark and its report (the daemon bench's row
//! format: operation, mode, requests, ops/s, p50/p90/p99/p99.9 latency, errors).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{Connection, Credentials};

/// Where the load goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The facade's address.
    pub addr: String,
    /// The signing client.
    pub creds: Arc<Credentials>,
    /// Keep-alive connections, one call in flight each.
    pub connections: usize,
}

/// One call's outcome.
#[derive(Debug)]
pub enum Outcome {
    /// Answered as expected.
    Ok,
    /// Anything else (status and code).
    Error(String),
}

/// What one operation measured.
#[derive(Debug, Default)]
pub struct Report {
    /// Latency of each expected answer, microseconds.
    pub latencies_us: Vec<u32>,
    /// Unexpected answers by status and code.
    pub errors: BTreeMap<String, u64>,
    /// Wall time of the operation.
    pub elapsed: Duration,
}

impl Report {
    /// Records one call.
    pub fn record(&mut self, latency: Duration, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self
                .latencies_us
                .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX)),
            Outcome::Error(e) => *self.errors.entry(e).or_default() += 1,
        }
    }

    /// Adds another connection's figures.
    pub fn merge(&mut self, other: Report) {
        self.latencies_us.extend(other.latencies_us);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    fn percentile(sorted: &[u32], p: f64) -> u32 {
        if sorted.is_empty() {
            return 0;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i.min(sorted.len() - 1)]
    }

    /// The report line (or JSON object).
    pub fn line(&mut self, operation: &str, mode: &str, json: bool) -> String {
        self.latencies_us.sort_unstable();
        let errors: u64 = self.errors.values().sum();
        let n = self.latencies_us.len() as u64 + errors;
        #[allow(clippy::cast_precision_loss)]
        let ops = n as f64 / self.elapsed.as_secs_f64().max(1e-9);
        let p = |q| Self::percentile(&self.latencies_us, q);
        if json {
            serde_json::json!({
                "operation": operation, "mode": mode, "requests": n,
                "ops_per_sec": ops.round(), "p50_us": p(0.5), "p90_us": p(0.9),
                "p99_us": p(0.99), "p999_us": p(0.999), "errors": errors,
                "errors_by_status": self.errors,
            })
            .to_string()
        } else {
            format!(
                "{operation:<15} {mode:<9} {ops:>10.0} ops/s  p50 {:>6} us  p90 {:>6} us  p99 {:>6} us  p99.9 {:>6} us  errors {errors}{}",
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
        }
    }
}

/// A call to make: method, path, body, and the error code that counts as expected
/// (a wrong PIN's `invalid_pin`).
pub type Call = (&'static str, String, Value, Option<&'static str>);

/// Closed loop for `duration`: each connection makes call `i` (a shared counter) and
/// waits for its answer before the next.
pub async fn closed_loop<F>(target: &Target, duration: Duration, make: F) -> Result<Report, String>
where
    F: Fn(usize) -> Call + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..target.connections {
        let (make, next, creds, addr) = (
            Arc::clone(&make),
            Arc::clone(&next),
            Arc::clone(&target.creds),
            target.addr.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::open(&addr).await?;
            let mut report = Report::default();
            while Instant::now() < deadline {
                let (method, path, body, expected) = make(next.fetch_add(1, Ordering::Relaxed));
                let t = Instant::now();
                let a = conn.call(&creds, method, &path, &body).await?;
                report.record(t.elapsed(), super::outcome(a.status, a.code(), expected));
            }
            Ok::<_, String>(report)
        }));
    }
    let mut total = Report::default();
    for t in tasks {
        total.merge(t.await.map_err(|e| e.to_string())??);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}
