//! Startup and the accept loop. Everything that can be wrong with the configuration is
//! found by [`load`] before any port is bound; [`run`] then serves until SIGTERM
//! (graceful: in-flight requests are answered) and reloads on SIGHUP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::admission::{self, AcceptBackoff, Admission};
use super::config::{CounterBackend, HsmConfig};
use super::counters::{
    CounterError, CounterStore, PgCounters, PgTarget, RedbCounters, Seal, identity,
};
use super::guard::{Guard, GuardPolicy};
use super::keyring::KeyRing;
use super::ledger;
use super::ledger_pg::PgLedger;
use super::metrics::Metrics;
use super::ops::DaemonSecrets;
use super::policy::Policy;
use super::state::Shared;
use super::{connection, tls};
use crate::keys::audit;
use crate::keys::lmk::Purpose;
use crate::keys::{KeyStore, LmkSource};

/// Why [`load`] failed: the configuration (or what it names) is wrong, which only an
/// operator can fix, or the shared counter store is not reachable yet, which a restart
/// may fix (the daemon exits 69 for it, and its unit restarts it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// A bad configuration, key store, audit log or counter store.
    Config(String),
    /// The PostgreSQL counter store did not answer.
    StoreUnreachable(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Config(m) | LoadError::StoreUnreachable(m) => f.write_str(m),
        }
    }
}

impl From<String> for LoadError {
    fn from(m: String) -> Self {
        LoadError::Config(m)
    }
}

impl From<&str> for LoadError {
    fn from(m: &str) -> Self {
        LoadError::Config(m.to_owned())
    }
}

/// Loads and checks everything the daemon needs: LMK, key store, configured keys,
/// policy, TLS files. Errors are one line naming the file or setting.
pub fn load(config: HsmConfig) -> Result<Shared, LoadError> {
    let source = if config.lmk_components.is_empty() {
        LmkSource::from_credentials_directory().ok_or(
            "no lmk_components in the config and no $CREDENTIALS_DIRECTORY/cofre-lmk credential",
        )?
    } else {
        LmkSource::Components(config.lmk_components.clone())
    };
    let lmk = source.load().map_err(|e| e.to_string())?;
    let mut store = KeyStore::load(&config.key_store, &lmk).map_err(|e| e.to_string())?;
    // The audit chain, up to the head the key store records, before anything else
    // trusts the key store or the counter store's binding.
    let audit_lines = audit::verified_lines(&config.audit_log, &lmk, store.audit_head())
        .map_err(|e| e.to_string())?;
    let ring = KeyRing::from_store(&store).map_err(|e| e.to_string())?;
    ring.active(&config.token_key, crate::keys::Operation::Tokenise)
        .map_err(|e| format!("token_key: {e}"))?;
    ring.active(&config.lookup_key, crate::keys::Operation::LookupToken)
        .map_err(|e| format!("lookup_key: {e}"))?;
    let policy = Policy::load(&config.policy)?;
    let tls = tls::server_config(&config.tls)?;
    let secrets = DaemonSecrets::new(&lmk, &config.token_key, &config.lookup_key)
        .map_err(|e| e.to_string())?;
    let metrics = Metrics::new()?;
    let seal = Seal::new(&lmk.derive(Purpose::CounterRecordMac)).ok_or("counter MAC key")?;
    let guard = Guard::new(
        GuardPolicy {
            failures_per_minute: config.lockout.guard_failures_per_minute,
            refuse: config.lockout.guard_refuse,
        },
        Some(metrics.guard_alert.clone()),
    );
    let now = SystemTime::now();
    let first_start = |id| {
        let event = identity::audit_event(identity::CREATED, "cofre-hsm", id);
        let time = humantime::format_rfc3339_seconds(now).to_string();
        let head =
            audit::append(&config.audit_log, &lmk, event, time).map_err(|e| e.to_string())?;
        store.set_audit_head(head);
        store
            .save(&config.key_store, &lmk)
            .map_err(|e| e.to_string())
    };
    let binding = identity::binding(&audit_lines);
    let mut shared_ledger = None;
    let counters: Box<dyn CounterStore> = match &config.counters {
        CounterBackend::Redb => Box::new(
            RedbCounters::open(
                &config.state_dir,
                seal,
                binding,
                unix_seconds(now),
                first_start,
                metrics.counters.clone(),
                guard,
            )
            .map_err(|e| e.to_string())?,
        ),
        CounterBackend::Postgres { url, password_file } => {
            let target = PgTarget {
                url: url.clone(),
                password: counters_password(password_file.as_deref())?,
            };
            shared_ledger = Some(target.clone());
            Box::new(
                PgCounters::open(
                    &target,
                    seal,
                    binding,
                    unix_seconds(now),
                    first_start,
                    metrics.counters.clone(),
                    guard,
                )
                .map_err(|e| match e {
                    CounterError::Unavailable(_) => LoadError::StoreUnreachable(e.to_string()),
                    other => LoadError::Config(other.to_string()),
                })?,
            )
        }
    };
    metrics.set_key_versions(&ring);
    let mut shared = Shared::new(
        config, lmk, secrets, store, ring, policy, tls, metrics, counters,
    )?;
    if let Some(target) = shared_ledger {
        join_ledger(&mut shared, &target)?;
    }
    Ok(shared)
}

/// With counters in PostgreSQL, the key store and audit log are shared through the same
/// database (docs/pair.md): seeds it from the local files, or takes the newer shared
/// generation (checked as a file load), or writes a local chain that extends it.
fn join_ledger(shared: &mut Shared, target: &PgTarget) -> Result<(), String> {
    let c = &shared.config;
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let local = ledger::verify(&read(&c.key_store)?, &read(&c.audit_log)?, &shared.lmk)
        .map_err(|e| e.to_string())?;
    let pg = PgLedger::open(&target.url, target.password.as_deref().map(String::as_str))
        .map_err(|e| e.to_string())?;
    if let Some(newer) = pg.start(&shared.lmk, &local).map_err(|e| e.to_string())? {
        let ring = ledger::ring_for(shared, &newer.store)?;
        ledger::write_local(shared, &newer.store_text, &newer.audit_text);
        *shared.lock_store() = newer.store;
        shared.set_ring(ring);
    }
    shared.ledger = Some(pg);
    Ok(())
}

/// The systemd credential that holds the shared counter store's password.
pub const COUNTERS_PASSWORD_CREDENTIAL: &str = "cofre-counters-password";

/// The shared counter store's password: `counters_password_file`, else the systemd
/// credential, else none (trust or certificate authentication). Only the file is named
/// in an error, never its content.
pub fn counters_password(
    file: Option<&std::path::Path>,
) -> Result<Option<zeroize::Zeroizing<String>>, String> {
    let path = match file {
        Some(f) => f.to_path_buf(),
        None => match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) => {
                let p = std::path::Path::new(&dir).join(COUNTERS_PASSWORD_CREDENTIAL);
                if !p.exists() {
                    return Ok(None);
                }
                p
            }
            None => return Ok(None),
        },
    };
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&path)
            .map_err(|e| format!("counters_password_file {}: {e}", path.display()))?,
    );
    let password = text.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(format!(
            "counters_password_file {} is empty",
            path.display()
        ));
    }
    Ok(Some(zeroize::Zeroizing::new(password.to_owned())))
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Re-reads the key store, policy and TLS files (SIGHUP). On any error the old ones
/// stay in force and the error is returned for the log.
pub fn reload(shared: &Shared) -> Result<(), String> {
    let c = &shared.config;
    // With a shared key ledger the keys come from it (the poller looks at once on
    // SIGHUP): the local files are only its copy.
    let keys = match shared.ledger {
        Some(_) => None,
        None => {
            let store = KeyStore::load(&c.key_store, &shared.lmk).map_err(|e| e.to_string())?;
            audit::verify(&c.audit_log, &shared.lmk, store.audit_head())
                .map_err(|e| e.to_string())?;
            let ring = KeyRing::from_store(&store).map_err(|e| e.to_string())?;
            Some((store, ring))
        }
    };
    let policy = Policy::load(&c.policy)?;
    let tls = tls::server_config(&c.tls)?;
    if let Some((store, ring)) = keys {
        *shared.lock_store() = store;
        shared.set_ring(ring);
    }
    shared.set_policy(policy);
    shared.set_tls(tls);
    Ok(())
}

/// Bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// Protocol listener.
    pub protocol: TcpListener,
    /// Metrics listener.
    pub metrics: Option<TcpListener>,
    /// The payShield listener (`[payshield]`), if configured.
    pub payshield: Option<TcpListener>,
}

impl Listeners {
    /// Binds the configured (or overriding) addresses.
    pub async fn bind(protocol: SocketAddr, metrics: Option<SocketAddr>) -> std::io::Result<Self> {
        let protocol = TcpListener::bind(protocol).await?;
        let metrics = match metrics {
            Some(a) => Some(TcpListener::bind(a).await?),
            None => None,
        };
        Ok(Self {
            protocol,
            metrics,
            payshield: None,
        })
    }
}

/// Serves until `stop` fires (SIGTERM in the binary), then drains. `hup` is the
/// SIGHUP stream, registered by the caller before it announces readiness (a signal
/// that arrives before its handler exists would kill the process).
pub async fn run(
    shared: Arc<Shared>,
    listeners: Listeners,
    stop: impl std::future::Future<Output = ()>,
    mut hup: Option<tokio::signal::unix::Signal>,
) {
    if let Some(m) = listeners.metrics {
        tokio::spawn(shared.metrics.clone().serve(m));
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let payshield = listeners.payshield.map(|l| {
        tokio::spawn(super::payshield::listener::run(
            Arc::clone(&shared),
            l,
            shutdown_rx.clone(),
        ))
    });
    let limits = &shared.config.limits;
    // Sockets open at once: connections served, handshakes and authenticated
    // connections waiting for a slot. Beyond, new ones stay in the listen backlog.
    let sockets = Arc::new(Semaphore::new(
        limits.max_connections + 2 * limits.max_handshakes,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let admission = Arc::new(Admission::new(
        limits.max_handshakes,
        limits.max_handshakes_per_source,
        Some(shared.metrics.handshakes.clone()),
    ));
    let accept_errors = shared
        .metrics
        .accept_errors
        .with_label_values(&["protocol"]);
    let mut backoff = AcceptBackoff::default();
    let look_for_keys = ledger::spawn_poller(&shared);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let hangup = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = &mut stop => break,
            _ = hangup => {
                super::notify::notify("RELOADING=1");
                if let Some(poller) = &look_for_keys {
                    let _ = poller.send(());
                }
                match reload(&shared) {
                    Ok(()) => tracing::info!("reloaded key store, policy and certificates"),
                    Err(e) => tracing::error!(error = %e, "reload failed; keeping the previous configuration"),
                }
                super::notify::notify("READY=1");
            }
            (socket, (tcp, peer)) = async {
                // Dropping this future (on a signal) releases the permit; accept() is
                // cancellation-safe.
                let socket = Arc::clone(&sockets).acquire_owned().await;
                let accepted =
                    admission::accept(&listeners.protocol, &mut backoff, &accept_errors, "protocol")
                        .await;
                (socket, accepted)
            } => {
                let Ok(socket) = socket else { break };
                // Over a handshake cap the connection is closed at once: idle or slow
                // handshakes never hold the backlog or another source's place.
                let handshake = match admission.admit(peer.ip()) {
                    Ok(h) => h,
                    Err(refusal) => {
                        shared.metrics.refused.with_label_values(&[refusal.name()]).inc();
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let shared = Arc::clone(&shared);
                let (slots, rx) = (Arc::clone(&slots), shutdown_rx.clone());
                connections.spawn(async move {
                    connection::serve(shared, tcp, handshake, slots, rx).await;
                    drop(socket);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    tracing::info!("shutting down: answering in-flight requests");
    super::notify::notify("STOPPING=1");
    let _ = shutdown_tx.send(true);
    let grace = shared.config.limits.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown grace period over; closing remaining connections");
        connections.abort_all();
    }
    if let Some(p) = payshield {
        let _ = p.await;
    }
}
