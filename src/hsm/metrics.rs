//! Prometheus metrics, served as plain text on their own listener (loopback by
//! default). Labels hold operation names, status names and key ids/versions only:
//! never a PAN, a token, a PIN or key material.

use std::sync::{Arc, OnceLock};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::keyring::KeyRing;

/// The daemon's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by operation and status.
    pub requests: IntCounterVec,
    /// Latency by operation.
    pub latency: HistogramVec,
    /// Open connections.
    pub connections: IntGauge,
    /// Connections refused at the TLS handshake (or that did not finish it in time).
    pub handshake_failures: IntCounter,
    /// TLS handshakes in progress.
    pub handshakes: IntGauge,
    /// Authenticated connections waiting for a connection slot.
    pub connections_waiting: IntGauge,
    /// Connections closed before their handshake, by reason (`handshakes`, `per_source`).
    pub refused: IntCounterVec,
    /// Failed accepts, by listener (`protocol`, `metrics`).
    pub accept_errors: IntCounterVec,
    key_versions: IntGaugeVec,
    /// The counter store's counters (commits, changes, MAC failures, lockouts).
    pub counters: super::counters::CounterMetrics,
    /// 1 while the brute-force guard is tripped.
    pub guard_alert: IntGauge,
    /// New PINs refused by the weak-PIN policy, by rule (`current`, `repeated`, ...).
    pub weak_pins: IntCounterVec,
    /// MACs that did not verify, by key id.
    pub mac_failures: IntCounterVec,
    handles: Arc<Handles>,
}

/// The series of each operation (and status), looked up once: `with_label_values`
/// hashes its labels on every call, which the request path should not pay. A series
/// is created on its first use, so `/metrics` lists only what happened.
#[derive(Debug)]
struct Handles {
    /// Indexed by operation (unknown operations last) times status.
    requests: Box<[OnceLock<IntCounter>]>,
    /// Indexed by operation (unknown operations last).
    latency: Box<[OnceLock<Histogram>]>,
}

const OPERATIONS: usize = crate::protocol::Opcode::ALL.len() + 1;
const STATUSES: usize = crate::protocol::Status::ALL.len();

impl Handles {
    fn new() -> Self {
        Self {
            requests: (0..OPERATIONS * STATUSES)
                .map(|_| OnceLock::new())
                .collect(),
            latency: (0..OPERATIONS).map(|_| OnceLock::new()).collect(),
        }
    }
}

/// An operation's row in [`Handles`] and its metric label.
fn operation_index(op: Option<crate::protocol::Opcode>) -> (usize, &'static str) {
    match op {
        Some(op) => (op.index(), op.name()),
        None => (OPERATIONS - 1, "unknown"),
    }
}

fn registered<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: Result<T, prometheus::Error>,
) -> Result<T, String> {
    let m = metric.map_err(|e| e.to_string())?;
    registry
        .register(Box::new(m.clone()))
        .map_err(|e| e.to_string())?;
    Ok(m)
}

impl Metrics {
    /// Creates the registry and every metric.
    pub fn new() -> Result<Self, String> {
        let registry = Registry::new();
        let requests = registered(
            &registry,
            IntCounterVec::new(
                Opts::new("cofre_requests_total", "Requests by operation and status"),
                &["operation", "status"],
            ),
        )?;
        let latency = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "cofre_request_duration_seconds",
                    "Time from request read to response queued",
                )
                .buckets(vec![
                    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5,
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ]),
                &["operation"],
            ),
        )?;
        let connections = registered(
            &registry,
            IntGauge::new("cofre_connections_open", "Open client connections"),
        )?;
        let handshake_failures = registered(
            &registry,
            IntCounter::new(
                "cofre_tls_handshake_failures_total",
                "Connections refused during the TLS handshake (no or wrong client certificate)",
            ),
        )?;
        let handshakes = registered(
            &registry,
            IntGauge::new("cofre_handshakes_in_progress", "TLS handshakes in progress"),
        )?;
        let connections_waiting = registered(
            &registry,
            IntGauge::new(
                "cofre_connections_waiting",
                "Authenticated connections waiting for a connection slot (limits.max_connections)",
            ),
        )?;
        let refused = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "cofre_connections_refused_total",
                    "Connections closed before their handshake: too many handshakes in progress, in all or from one source",
                ),
                &["reason"],
            ),
        )?;
        let accept_errors = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "cofre_accept_errors_total",
                    "Failed accepts (out of open files, buffers or memory: the listener backs off)",
                ),
                &["listener"],
            ),
        )?;
        let key_versions = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "cofre_key_version",
                    "Usable key versions (1 active, 0 verify-only)",
                ),
                &["key", "version"],
            ),
        )?;
        let counters = super::counters::CounterMetrics::new()?;
        for c in counters.all() {
            registry
                .register(Box::new(c.clone()))
                .map_err(|e| e.to_string())?;
        }
        let guard_alert = registered(
            &registry,
            IntGauge::new(
                "cofre_bruteforce_guard_alert",
                "1 while PIN failures per minute across all cards are over the configured rate",
            ),
        )?;
        let weak_pins = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "cofre_weak_pins_total",
                    "New PINs refused by the weak-PIN policy, by rule",
                ),
                &["rule"],
            ),
        )?;
        let mac_failures = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "cofre_mac_verification_failures_total",
                    "mac.verify answers verification_failed, by key id",
                ),
                &["key"],
            ),
        )?;
        Ok(Self {
            weak_pins,
            mac_failures,
            handles: Arc::new(Handles::new()),
            counters,
            guard_alert,
            registry,
            requests,
            latency,
            connections,
            handshake_failures,
            handshakes,
            connections_waiting,
            refused,
            accept_errors,
            key_versions,
        })
    }

    /// Counts one answered request (`None`: an opcode that names no operation) and its
    /// latency.
    pub fn record(
        &self,
        operation: Option<crate::protocol::Opcode>,
        status: crate::protocol::Status,
        started: std::time::Instant,
    ) {
        let (row, name) = operation_index(operation);
        let code = usize::from(status.code());
        if code < STATUSES
            && let Some(c) = self.handles.requests.get(row * STATUSES + code)
        {
            c.get_or_init(|| self.requests.with_label_values(&[name, status.name()]))
                .inc();
        }
        if let Some(h) = self.handles.latency.get(row) {
            h.get_or_init(|| self.latency.with_label_values(&[name]))
                .observe(started.elapsed().as_secs_f64());
        }
    }

    /// Records the key versions in use.
    pub fn set_key_versions(&self, ring: &KeyRing) {
        self.key_versions.reset();
        for (id, version, status) in ring.versions() {
            self.key_versions
                .with_label_values(&[id, &version.to_string()])
                .set(i64::from(status == crate::keys::Status::Active));
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Serves `GET /metrics` (any path) over HTTP/1.0 until the task is dropped: at most
    /// [`METRICS_CONNECTIONS`] at once (more are closed at once), each given
    /// [`METRICS_READ_TIMEOUT`] to send its request; accept errors back off.
    pub async fn serve(self, listener: TcpListener) {
        let slots = Arc::new(tokio::sync::Semaphore::new(METRICS_CONNECTIONS));
        let errors = self.accept_errors.with_label_values(&["metrics"]);
        let mut backoff = super::admission::AcceptBackoff::default();
        loop {
            let (mut sock, _) =
                super::admission::accept(&listener, &mut backoff, &errors, "metrics").await;
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                continue;
            };
            let metrics = self.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 1024];
                let read = tokio::time::timeout(METRICS_READ_TIMEOUT, sock.read(&mut req));
                if !matches!(read.await, Ok(Ok(n)) if n > 0) {
                    return;
                }
                let body = metrics.render();
                let head = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let write = async {
                    sock.write_all(head.as_bytes()).await?;
                    sock.write_all(body.as_bytes()).await?;
                    sock.shutdown().await
                };
                let _ = tokio::time::timeout(METRICS_READ_TIMEOUT, write).await;
                drop(slot);
            });
        }
    }
}

/// Metrics connections served at once.
pub const METRICS_CONNECTIONS: usize = 16;
/// How long a metrics connection may take to send its request (and to take the answer).
pub const METRICS_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
