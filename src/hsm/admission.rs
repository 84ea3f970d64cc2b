//! Before a connection is authenticated: who may start a TLS handshake, and what the
//! accept loops do when accepting fails.
//!
//! * At most `max_handshakes` handshakes are in progress at once, and at most
//!   `max_handshakes_per_source` from one source address. A connection over either cap is
//!   closed at once rather than queued, so idle or half-sent handshakes (each bounded by
//!   `handshake_timeout`) can neither hold the listen backlog nor keep other sources out.
//!   The connection slot (`max_connections`) is taken only after the handshake.
//! * Accept errors that mean the process is out of a resource (open files, buffers,
//!   memory) back off exponentially, 10 ms doubling to 1 s, instead of retrying at once
//!   (which spins a core while nothing can be accepted). Other errors concern one
//!   connection and are retried at once, backing off only when they repeat.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// Why a connection was closed before its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_handshakes` are in progress.
    Handshakes,
    /// `max_handshakes_per_source` are in progress from this address.
    Source,
}

impl Refusal {
    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Handshakes => "handshakes",
            Refusal::Source => "per_source",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// The handshake caps.
#[derive(Debug)]
pub struct Admission {
    counts: Mutex<Counts>,
    max: usize,
    per_source: usize,
    gauge: Option<prometheus::IntGauge>,
}

/// A handshake in progress; dropping it frees its place.
#[derive(Debug)]
pub struct HandshakeSlot {
    admission: Arc<Admission>,
    source: IpAddr,
}

impl Admission {
    /// Caps of `max` handshakes in all and `per_source` from one address; `gauge`
    /// mirrors the number in progress.
    pub fn new(max: usize, per_source: usize, gauge: Option<prometheus::IntGauge>) -> Self {
        Self {
            counts: Mutex::default(),
            max,
            per_source,
            gauge,
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        match self.counts.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A place for a handshake from `source`, or why not.
    pub fn admit(self: &Arc<Self>, source: IpAddr) -> Result<HandshakeSlot, Refusal> {
        let mut c = self.counts();
        if c.total >= self.max {
            return Err(Refusal::Handshakes);
        }
        let mine = c.by_source.entry(source).or_default();
        if *mine >= self.per_source {
            return Err(Refusal::Source);
        }
        *mine += 1;
        c.total += 1;
        if let Some(g) = &self.gauge {
            g.inc();
        }
        Ok(HandshakeSlot {
            admission: Arc::clone(self),
            source,
        })
    }

    /// Handshakes in progress.
    pub fn in_progress(&self) -> usize {
        self.counts().total
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut c = self.admission.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                c.by_source.remove(&self.source);
            }
        }
        if let Some(g) = &self.admission.gauge {
            g.dec();
        }
    }
}

/// The delay after consecutive accept failures.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    failures: u32,
}

/// Consecutive failures of one connection's kind before those back off too.
const REPEATED: u32 = 8;
const FIRST_DELAY: Duration = Duration::from_millis(10);
const LONGEST_DELAY: Duration = Duration::from_secs(1);

impl AcceptBackoff {
    /// Records a failure; returns how long to wait before accepting again (`None`:
    /// at once). `resource` says the process is out of a resource.
    pub fn failed(&mut self, resource: bool) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        let steps = if resource {
            self.failures - 1
        } else if self.failures > REPEATED {
            self.failures - REPEATED - 1
        } else {
            return None;
        };
        Some(
            FIRST_DELAY
                .saturating_mul(1 << steps.min(7))
                .min(LONGEST_DELAY),
        )
    }

    /// An accept succeeded: the next failure starts over.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// Whether an accept error means the process is out of a resource.
pub fn out_of_resources(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

/// Accepts the next connection, backing off on errors (each counted in `errors`).
pub async fn accept(
    listener: &TcpListener,
    backoff: &mut AcceptBackoff,
    errors: &prometheus::IntCounter,
    what: &'static str,
) -> (TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => {
                backoff.succeeded();
                return accepted;
            }
            Err(e) => {
                errors.inc();
                if let Some(delay) = backoff.failed(out_of_resources(&e)) {
                    if delay == FIRST_DELAY || delay == LONGEST_DELAY {
                        tracing::warn!(listener = what, error = %e, ?delay, "accept failed; backing off");
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn handshake_caps_in_all_and_per_source() {
        let a = Arc::new(Admission::new(3, 2, None));
        let (x, y): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let x1 = a.admit(x).unwrap();
        let _x2 = a.admit(x).unwrap();
        assert_eq!(a.admit(x).unwrap_err(), Refusal::Source);
        let _y1 = a.admit(y).unwrap();
        assert_eq!(a.admit(y).unwrap_err(), Refusal::Handshakes);
        assert_eq!(a.in_progress(), 3);
        drop(x1);
        assert_eq!(a.in_progress(), 2);
        let _x3 = a.admit(x).unwrap();
        assert_eq!(a.counts().by_source.len(), 2);
    }

    #[test]
    fn resource_errors_back_off_exponentially_to_one_second() {
        let mut b = AcceptBackoff::default();
        let delays: Vec<u64> = (0..10)
            .map(|_| b.failed(true).unwrap().as_millis() as u64)
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.failed(true), Some(FIRST_DELAY));
    }

    #[test]
    fn one_connections_errors_retry_at_once_unless_they_repeat() {
        let mut b = AcceptBackoff::default();
        for _ in 0..REPEATED {
            assert_eq!(b.failed(false), None);
        }
        assert_eq!(b.failed(false), Some(FIRST_DELAY));
        assert_eq!(b.failed(false), Some(FIRST_DELAY * 2));
        let emfile = std::io::Error::from_raw_os_error(nix::errno::Errno::EMFILE as i32);
        let aborted = std::io::Error::from_raw_os_error(nix::errno::Errno::ECONNABORTED as i32);
        assert!(out_of_resources(&emfile));
        assert!(!out_of_resources(&aborted));
    }
}
