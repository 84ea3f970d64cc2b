//! The async client for `cofre hsm`: a pool of mutual-TLS connections, each pipelined
//! (many requests in flight, responses matched by request id in any order), with
//! failover across daemon addresses and a typed call for every operation.
//!
//! Uses only [`crate::protocol`]; never imports `hsm` or `keys`. Errors and `Debug`
//! output never contain request or response field values (PANs, PIN blocks, keys).

mod calls;
mod connection;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::sync::Mutex;

pub use calls::{Card, IbmParams, PinReference, Verification};
use connection::Connection;

use crate::protocol::{Fields, FieldsWriter, Opcode, Status, Tag, decode_response};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Daemon addresses (`host:port`), tried in order when (re)connecting.
    pub addresses: Vec<String>,
    /// CA that signed the daemon's certificate.
    pub ca: PathBuf,
    /// This client's certificate (its Common Name is its identity at the daemon).
    pub cert: PathBuf,
    /// This client's private key.
    pub key: PathBuf,
    /// Name to verify in the daemon's certificate.
    pub server_name: String,
    /// Connections in the pool.
    pub connections: usize,
    /// Requests in flight per connection (the daemon's default limit is 256).
    pub max_in_flight: usize,
    /// Time limit per request (and per connection attempt).
    pub timeout: Duration,
}

impl ClientConfig {
    /// Defaults for the example PKI: `dir/ca.pem`, `dir/client-<identity>.pem` and key.
    pub fn for_identity(addresses: Vec<String>, pki: &std::path::Path, identity: &str) -> Self {
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

/// Why a call failed. Never carries field values.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Bad configuration (files, names).
    #[error("client configuration: {0}")]
    Config(String),
    /// No daemon address could be reached, or TLS failed.
    #[error("connection: {0}")]
    Connection(String),
    /// No response in time.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The daemon sent something that is not a valid frame.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The daemon answered with a non-ok status.
    #[error("{status}: {message}")]
    Status {
        /// The status (or `internal` for a code this client does not know).
        status: Status,
        /// The daemon's short reason.
        message: String,
    },
}

/// A response: status and the body's fields (owned).
#[derive(Clone)]
pub struct Response {
    /// The raw status code.
    pub status_code: u16,
    payload: Vec<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Response({:?})", self.status())
    }
}

impl Response {
    fn new(status_code: u16, payload: Vec<u8>) -> Result<Self, ClientError> {
        decode_response(&payload).map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Self {
            status_code,
            payload,
        })
    }

    /// The status, if this client knows the code.
    pub fn status(&self) -> Option<Status> {
        Status::from_code(self.status_code)
    }

    /// The body fields.
    pub fn fields(&self) -> Fields<'_> {
        match decode_response(&self.payload) {
            Ok((_, f)) => f,
            // Checked in `new`; an empty body is the safe fallback.
            Err(_) => Fields::empty(),
        }
    }

    /// A string field.
    pub fn str(&self, tag: Tag) -> Option<String> {
        self.fields().str(tag).ok().flatten().map(str::to_owned)
    }

    /// A bytes field.
    pub fn bytes(&self, tag: Tag) -> Option<Vec<u8>> {
        self.fields().bytes(tag).ok().flatten().map(<[u8]>::to_vec)
    }

    /// A u32 field.
    pub fn u32(&self, tag: Tag) -> Option<u32> {
        self.fields().u32(tag).ok().flatten()
    }

    /// A u64 field.
    pub fn u64(&self, tag: Tag) -> Option<u64> {
        self.fields().u64(tag).ok().flatten()
    }

    /// A bool field.
    pub fn bool(&self, tag: Tag) -> Option<bool> {
        self.fields().bool(tag).ok().flatten()
    }

    /// The daemon's message for a non-ok status.
    pub fn message(&self) -> String {
        self.str(Tag::Message).unwrap_or_default()
    }

    /// `Ok(self)` for status ok, else the status as an error.
    pub fn ok(self) -> Result<Self, ClientError> {
        match self.status() {
            Some(Status::Ok) => Ok(self),
            other => Err(ClientError::Status {
                status: other.unwrap_or(Status::Internal),
                message: self.message(),
            }),
        }
    }
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
    pool: Vec<Mutex<Option<Arc<Connection>>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addresses", &self.config.addresses)
            .field("connections", &self.pool.len())
            .finish()
    }
}

fn tls_config(c: &ClientConfig) -> Result<rustls::ClientConfig, ClientError> {
    let cfg = |e: String| ClientError::Config(e);
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(&c.ca).map_err(|e| cfg(format!("{}: {e}", c.ca.display())))?
    {
        let cert = cert.map_err(|e| cfg(format!("{}: {e}", c.ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| cfg(format!("{}: {e}", c.ca.display())))?;
    }
    let chain: Vec<_> = CertificateDer::pem_file_iter(&c.cert)
        .map_err(|e| cfg(format!("{}: {e}", c.cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| cfg(format!("{}: {e}", c.cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(&c.key)
        .map_err(|e| cfg(format!("{}: {e}", c.key.display())))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| cfg(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| cfg(e.to_string()))
}

impl Client {
    /// Builds the client and opens the first connection (so a wrong address or
    /// certificate is reported here).
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        if config.addresses.is_empty() {
            return Err(ClientError::Config("no daemon address".into()));
        }
        let tls = tokio_rustls::TlsConnector::from(Arc::new(tls_config(&config)?));
        let server_name = ServerName::try_from(config.server_name.clone())
            .map_err(|e| ClientError::Config(format!("server name: {e}")))?;
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

    async fn open(&self) -> Result<Arc<Connection>, ClientError> {
        let c = &self.inner.config;
        let mut last = String::from("no address");
        for addr in &c.addresses {
            match Connection::open(addr, &self.inner.tls, self.inner.server_name.clone(), c).await {
                Ok(conn) => return Ok(Arc::new(conn)),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(ClientError::Connection(last))
    }

    async fn connection(&self, slot: usize) -> Result<Arc<Connection>, ClientError> {
        let mut guard = self.inner.pool[slot % self.inner.pool.len()].lock().await;
        if let Some(c) = guard.as_ref().filter(|c| c.is_alive()) {
            return Ok(Arc::clone(c));
        }
        let conn = self.open().await?;
        *guard = Some(Arc::clone(&conn));
        Ok(conn)
    }

    /// Sends one request built by `body` and waits for its response (any status).
    pub async fn call(
        &self,
        op: Opcode,
        body: impl FnOnce(&mut FieldsWriter<'_>),
    ) -> Result<Response, ClientError> {
        let slot = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let conn = self.connection(slot).await?;
        conn.call(op.code(), body, self.inner.config.timeout).await
    }
}
