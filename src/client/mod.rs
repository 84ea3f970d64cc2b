//! The async client for `cofre hsm`: a pool of mutual-TLS connections, each pipelined
//! (many requests in flight, responses matched by request id in any order), with
//! failover across daemon addresses and a typed call for every operation.
//!
//! Owns: TLS setup, the connection pool, request ids, and turning statuses into typed
//! outcomes. Uses only [`crate::protocol`]; never imports `hsm` or `keys`. Errors and
//! `Debug` output never contain field values (PANs, PIN blocks, PVVs, keys).
//!
//! Shapes of the typed calls: a result with several fields is the [`Response`], read
//! with its getters by [`Tag`](crate::protocol::Tag) (`str(Tag::Token)`); a single
//! value is returned typed (`detokenise` gives the PAN); a check answers
//! [`Verification`] (a wrong PIN is an answer, not an error); every other non-ok status
//! is [`ClientError::Status`].
//! [`Client::call`] reaches any operation with any fields.

mod card_calls;
mod connection;
mod key_calls;
mod pin_calls;
mod requests;
mod response;
mod routing;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::sync::Mutex;

pub use pin_calls::DukptPinBlock;
pub use requests::{
    Alphabet, Card, Dcvv2Moment, Dcvv2Request, IbmParams, KeyGenerateRequest, PanGenerateRequest,
    PinChange, PinChangeRequest, PinDelivery, PinGenerateRequest, PinMethod, PinRebindRequest,
    PinReference, PinTranslateRequest, Verification,
};
pub use response::Response;

use connection::Connection;

use crate::protocol::{FieldsWriter, Opcode, Status};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Daemon addresses (`host:port`), tried in order whenever a connection is opened.
    pub addresses: Vec<String>,
    /// CA that signed the daemon's certificate (PEM).
    pub ca: PathBuf,
    /// This client's certificate chain (PEM; its Common Name is its identity).
    pub cert: PathBuf,
    /// This client's private key (PEM).
    pub key: PathBuf,
    /// Name to verify in the daemon's certificate.
    pub server_name: String,
    /// Connections in the pool; calls are spread over them round-robin.
    pub connections: usize,
    /// Requests in flight per connection (the daemon answers `overloaded` above its own
    /// limit, 256 by default).
    pub max_in_flight: usize,
    /// Time limit per request, and per TCP connect and TLS handshake.
    pub timeout: Duration,
}

impl ClientConfig {
    /// Defaults, with the certificate files of `identity` in a directory laid out like
    /// `keys-example/pki`: `ca.pem`, `client-<identity>.pem`, `client-<identity>-key.pem`.
    pub fn for_identity(addresses: Vec<String>, pki: &Path, identity: &str) -> Self {
        Self {
            addresses,
            ca: pki.join("ca.pem"),
            cert: pki.join(format!("client-{identity}.pem")),
            key: pki.join(format!("client-{identity}-key.pem")),
            server_name: "localhost".into(),
            connections: 1,
            max_in_flight: 256,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why a call failed. Never carries a field value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Bad configuration: unreadable certificate or key files, no address, a bad name.
    #[error("client configuration: {0}")]
    Config(String),
    /// The TLS handshake failed, or the daemon sent a TLS alert (e.g. it refused this
    /// client's certificate).
    #[error("TLS: {0}")]
    Tls(String),
    /// No daemon address could be reached, or the connection broke; requests that
    /// were waiting on it may or may not have been executed.
    #[error("connection: {0}")]
    Connection(String),
    /// No response within the configured time; the request may still be executed.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The daemon sent something that is not a valid response.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The request cannot be encoded (a value does not fit its field's type); nothing
    /// was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The daemon answered with a non-ok status.
    #[error("{status}: {message}")]
    Status {
        /// The status (`internal` for a code this client does not know; the message
        /// then names the code).
        status: Status,
        /// The daemon's short reason (never secret).
        message: String,
    },
}

/// The client: cheap to clone, safe to share between tasks.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    tls: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    /// One slot per pooled connection; `None` until first used.
    pool: Vec<Mutex<Option<Arc<Connection>>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addresses", &self.config.addresses)
            .field("connections", &self.pool.len())
            .finish_non_exhaustive()
    }
}

/// TLS 1.3 only, ring, the configured CA as the only root, and the client certificate.
fn tls_config(c: &ClientConfig) -> Result<rustls::ClientConfig, ClientError> {
    let at = |path: &Path| {
        let shown = path.display().to_string();
        move |e: rustls::pki_types::pem::Error| ClientError::Config(format!("{shown}: {e}"))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&c.ca).map_err(at(&c.ca))? {
        roots
            .add(cert.map_err(at(&c.ca))?)
            .map_err(|e| ClientError::Config(format!("{}: {e}", c.ca.display())))?;
    }
    if roots.is_empty() {
        return Err(ClientError::Config(format!(
            "{}: no certificate",
            c.ca.display()
        )));
    }
    let chain: Vec<_> = CertificateDer::pem_file_iter(&c.cert)
        .map_err(at(&c.cert))?
        .collect::<Result<_, _>>()
        .map_err(at(&c.cert))?;
    if chain.is_empty() {
        return Err(ClientError::Config(format!(
            "{}: no certificate",
            c.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&c.key).map_err(at(&c.key))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClientError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| ClientError::Config(format!("{}: {e}", c.key.display())))
}

/// The TLS connector and the server name to verify for `config`: for code that drives
/// its own connection (the load generator of `cofre bench`).
pub fn tls_connector(
    config: &ClientConfig,
) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), ClientError> {
    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls_config(config)?));
    let server_name = ServerName::try_from(config.server_name.clone())
        .map_err(|e| ClientError::Config(format!("server name: {e}")))?;
    Ok((tls, server_name))
}

impl Client {
    /// Reads the certificates and opens the first connection, so a wrong path, address
    /// or CA is reported here rather than at the first call. (A daemon refusing the
    /// client certificate shows at the first call: TLS 1.3 reports it after the
    /// handshake.)
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        if config.addresses.is_empty() {
            return Err(ClientError::Config("no daemon address".into()));
        }
        let (tls, server_name) = tls_connector(&config)?;
        let pool = (0..config.connections.max(1))
            .map(|_| Mutex::new(None))
            .collect();
        let client = Self {
            inner: Arc::new(Inner {
                config,
                tls,
                server_name,
                pool,
                next: AtomicUsize::new(0),
            }),
        };
        client.connection(0).await?;
        Ok(client)
    }

    /// Opens a connection to the first address that answers (failover). The error
    /// names every address tried; it is [`ClientError::Tls`] if any daemon was reached
    /// but the handshake failed, since retrying will not fix that.
    async fn open(&self) -> Result<Connection, ClientError> {
        let c = &self.inner.config;
        let mut failures = Vec::new();
        let mut tls_failed = false;
        for addr in &c.addresses {
            let opened = Connection::open(
                addr,
                &self.inner.tls,
                self.inner.server_name.clone(),
                c.timeout,
                c.max_in_flight,
            )
            .await;
            match opened {
                Ok(conn) => return Ok(conn),
                Err(ClientError::Tls(e)) => {
                    tls_failed = true;
                    failures.push(format!("{addr}: TLS handshake: {e}"));
                }
                Err(ClientError::Connection(e)) => failures.push(format!("{addr}: {e}")),
                Err(e) => failures.push(format!("{addr}: {e}")),
            }
        }
        let all = failures.join("; ");
        Err(if tls_failed {
            ClientError::Tls(all)
        } else {
            ClientError::Connection(all)
        })
    }

    /// The pooled connection of `slot`, reopened if it died. The slot stays locked
    /// while opening, so concurrent callers wait for one reconnection instead of
    /// racing their own.
    async fn connection(&self, slot: usize) -> Result<Arc<Connection>, ClientError> {
        let pool = &self.inner.pool;
        let Some(cell) = pool.get(slot % pool.len().max(1)) else {
            return Err(ClientError::Config("empty connection pool".into()));
        };
        let mut cell = cell.lock().await;
        if let Some(c) = cell.as_ref().filter(|c| c.is_alive()) {
            return Ok(Arc::clone(c));
        }
        let conn = Arc::new(self.open().await?);
        *cell = Some(Arc::clone(&conn));
        Ok(conn)
    }

    /// Sends one request whose fields `body` writes, and waits for its response,
    /// whatever the status (see [`Response::ok`]). Calls go round-robin over the pool.
    /// A failed call is not retried: the daemon may have executed it.
    pub async fn call(
        &self,
        opcode: Opcode,
        body: impl FnOnce(&mut FieldsWriter<'_>),
    ) -> Result<Response, ClientError> {
        let slot = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let conn = self.connection(slot).await?;
        conn.call(opcode.code(), body, self.inner.config.timeout)
            .await
    }
}
