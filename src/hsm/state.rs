//! What every connection shares: configuration, the LMK, the key store and its expanded
//! cache, the policy, TLS settings, metrics. Readers take a cheap `Arc` snapshot;
//! SIGHUP and key administration swap in new snapshots without stopping anyone.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use rustls::ServerConfig;

use super::config::HsmConfig;
use super::counters::{CardNamer, CounterStore};
use super::keyring::KeyRing;
use super::metrics::Metrics;
use super::ops::DaemonSecrets;
use super::policy::Policy;
use crate::keys::{KeyStore, Lmk};

/// The daemon's shared state.
#[derive(Debug)]
pub struct Shared {
    /// Validated configuration.
    pub config: HsmConfig,
    /// The LMK (locked memory where allowed).
    pub lmk: Lmk,
    /// LMK-derived keys and configured ids.
    pub secrets: DaemonSecrets,
    /// The key store; held only by key administration and reload.
    pub store: Mutex<KeyStore>,
    ring: RwLock<Arc<KeyRing>>,
    policy: RwLock<Arc<Policy>>,
    tls: RwLock<Arc<ServerConfig>>,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Start time (health's uptime).
    pub started: Instant,
    /// PIN try counters, dCVV2 state and the brute-force guard.
    pub counters: Box<dyn CounterStore>,
    /// Names cards in the counter store (under an LMK-derived key).
    pub card_namer: CardNamer,
    /// The key ledger shared with the other daemons (with counters in PostgreSQL).
    pub ledger: Option<super::ledger_pg::PgLedger>,
}

fn read<T>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    match lock.read() {
        Ok(g) => Arc::clone(&g),
        // A writer panicked mid-swap: the Arc inside is still a complete value.
        Err(poisoned) => Arc::clone(&poisoned.into_inner()),
    }
}

fn write<T>(lock: &RwLock<Arc<T>>, value: T) {
    match lock.write() {
        Ok(mut g) => *g = Arc::new(value),
        Err(poisoned) => *poisoned.into_inner() = Arc::new(value),
    }
}

impl Shared {
    /// Assembles the state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: HsmConfig,
        lmk: Lmk,
        secrets: DaemonSecrets,
        store: KeyStore,
        ring: KeyRing,
        policy: Policy,
        tls: ServerConfig,
        metrics: Metrics,
        counters: Box<dyn CounterStore>,
    ) -> Result<Self, String> {
        let card_key = lmk.derive(crate::keys::lmk::Purpose::CardCounterKey);
        let card_namer = CardNamer::new(&card_key).ok_or("the card-counter key is empty")?;
        Ok(Self {
            config,
            lmk,
            secrets,
            store: Mutex::new(store),
            ring: RwLock::new(Arc::new(ring)),
            policy: RwLock::new(Arc::new(policy)),
            tls: RwLock::new(Arc::new(tls)),
            metrics,
            started: Instant::now(),
            counters,
            card_namer,
            ledger: None,
        })
    }

    /// The current key cache.
    pub fn ring(&self) -> Arc<KeyRing> {
        read(&self.ring)
    }

    /// Replaces the key cache.
    pub fn set_ring(&self, ring: KeyRing) {
        self.metrics.set_key_versions(&ring);
        write(&self.ring, ring);
    }

    /// The current policy.
    pub fn policy(&self) -> Arc<Policy> {
        read(&self.policy)
    }

    /// Replaces the policy.
    pub fn set_policy(&self, policy: Policy) {
        write(&self.policy, policy);
    }

    /// The current TLS settings (for new connections).
    pub fn tls(&self) -> Arc<ServerConfig> {
        read(&self.tls)
    }

    /// Replaces the TLS settings.
    pub fn set_tls(&self, tls: ServerConfig) {
        write(&self.tls, tls);
    }

    /// Locks the key store.
    pub fn lock_store(&self) -> std::sync::MutexGuard<'_, KeyStore> {
        match self.store.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}
