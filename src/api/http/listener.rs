//! The facade's listener: HTTPS (rustls, TLS 1.3, optional or required client
//! certificates) or, by explicit configuration on a loopback address only, plain HTTP;
//! and the limits against slow and hostile clients:
//!
//! * at most `max_connections` connections at once, `max_connections_per_source` from
//!   one address; a connection beyond either is closed at once (before its handshake),
//!   so a crowd of idle sockets cannot hold the process's files;
//! * a TLS handshake not done within `handshake_timeout` closes the connection;
//! * a request head not complete within `header_timeout` of the connection being ready
//!   for it closes the connection (hyper's header read timeout; it also closes a
//!   keep-alive connection left idle that long);
//! * the body's own timeout is the pipeline's (`408`).
//!
//! Each request carries its [`Peer`] (address, and the verified certificate's Common
//! Name) in its extensions. Accept errors (out of files or memory) back off from 10 ms to
//! 1 s instead of spinning.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

use crate::api::config::{ClientCertificates, FacadeTls, Limits};

/// Who is on the other end of a request's connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The source address.
    pub addr: SocketAddr,
    /// The Common Name of the client certificate the connection presented (verified
    /// against `tls.client_ca`), if any.
    pub identity: Option<String>,
}

/// The TLS settings of `[tls]`: the facade's certificate and key, and client
/// certificates verified against `client_ca` (with the clientAuth extended key usage)
/// when it is set, optional or required.
pub fn tls_acceptor(tls: &FacadeTls) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("tls: {e}"))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in crate::tls::certs(ca)? {
                roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let webpki = match tls.client_certificates {
                ClientCertificates::Optional => webpki.allow_unauthenticated(),
                ClientCertificates::Required => webpki,
            }
            .build()
            .map_err(|e| format!("tls.client_ca: {e}"))?;
            builder.with_client_cert_verifier(Arc::new(crate::tls::ClientAuthRequired(webpki)))
        }
    };
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| format!("{}: {e}", tls.key.display()))?;
    let mut config = builder
        .with_single_cert(crate::tls::certs(&tls.cert)?, key)
        .map_err(|e| format!("{}: {e}", tls.cert.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Connections per source address.
#[derive(Debug, Default)]
struct Sources(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`Sources`], given back when it closes.
struct SourceSlot {
    sources: Arc<Sources>,
    ip: IpAddr,
}

impl Sources {
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<SourceSlot> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            sources: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut map = self
            .sources
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the open
/// connections finish their requests (at most `grace`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let sources = Arc::new(Sources::default());
    let graceful = GracefulShutdown::new();
    let mut backoff = Duration::from_millis(10);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (tcp, addr) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(10);
                a
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%addr, "connection refused: max_connections");
            continue;
        };
        let Some(source) = sources.enter(addr.ip(), limits.max_connections_per_source) else {
            tracing::debug!(%addr, "connection refused: max_connections_per_source");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (router, tls) = (router.clone(), tls.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _held = (slot, source);
            connection(tcp, addr, router, tls, limits, watcher).await;
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("connections still open after the shutdown grace");
        }
    }
}

async fn connection(
    tcp: TcpStream,
    addr: SocketAddr,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    watcher: hyper_util::server::graceful::Watcher,
) {
    match tls {
        None => {
            let peer = Peer {
                addr,
                identity: None,
            };
            http(tcp, peer, router, limits, watcher).await;
        }
        Some(acceptor) => {
            let stream =
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%addr, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%addr, "TLS handshake timed out");
                        return;
                    }
                };
            let identity = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(crate::tls::common_name);
            http(stream, Peer { addr, identity }, router, limits, watcher).await;
        }
    }
}

async fn http<S>(
    io: S,
    peer: Peer,
    router: Router,
    limits: Limits,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(peer.clone());
            // A router is always ready: no poll_ready needed before `call`.
            router.clone().call(req.map(axum::body::Body::new))
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection closed");
    }
}
