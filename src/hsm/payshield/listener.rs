//! The payShield listener's accept loop: the native listener's admission rules (the
//! handshake caps before a connection is authenticated, `max_connections` after,
//! accept errors backing off), then one task per connection (`payshield::connection`).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::super::admission::{self, AcceptBackoff, Admission};
use super::super::state::Shared;
use super::connection;
use crate::keys::lmk::Purpose;

/// Serves `listener` until `shutdown` turns true; connections then answer what they
/// have read and close (the native listener's grace period bounds the wait).
pub async fn run(shared: Arc<Shared>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let Some(config) = shared.config.payshield.clone() else {
        return;
    };
    let kbpk = Arc::new(shared.lmk.derive(Purpose::PayshieldKeyBlock));
    let limits = shared.config.limits.clone();
    let sockets = Arc::new(Semaphore::new(
        limits.max_connections + 2 * limits.max_handshakes,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let admission = Arc::new(Admission::new(
        limits.max_handshakes,
        limits.max_handshakes_per_source,
        None,
    ));
    let errors = shared
        .metrics
        .accept_errors
        .with_label_values(&["payshield"]);
    let mut backoff = AcceptBackoff::default();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            (socket, (tcp, peer)) = async {
                let socket = Arc::clone(&sockets).acquire_owned().await;
                let accepted = admission::accept(&listener, &mut backoff, &errors, "payshield").await;
                (socket, accepted)
            } => {
                let Ok(socket) = socket else { break };
                let handshake = match admission.admit(peer.ip()) {
                    Ok(h) => h,
                    Err(refusal) => {
                        shared.metrics.refused.with_label_values(&[refusal.name()]).inc();
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let c = connection::Connection {
                    shared: Arc::clone(&shared),
                    config: config.clone(),
                    kbpk: Arc::clone(&kbpk),
                    cache: Default::default(),
                };
                let (slots, rx) = (Arc::clone(&slots), shutdown.clone());
                connections.spawn(async move {
                    c.serve(tcp, handshake, slots, rx).await;
                    drop(socket);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let grace = shared.config.limits.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}
