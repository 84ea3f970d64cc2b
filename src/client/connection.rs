//! One pipelined connection: a writer task that batches queued frames, a reader task
//! that hands each response to the [`Router`], and `call`, which ties a caller to a
//! request id. Only bytes move here; the routing rules live in `routing.rs`.
//!
//! The connection is generic over its stream so that tests can run it over an
//! in-memory pipe; in use it is a TLS stream.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::AbortHandle;

use super::routing::Router;
use super::{ClientError, Response};
use crate::protocol::{
    ABSOLUTE_MAX_FRAME, FieldsWriter, RESPONSE_HEADER_LEN, encode_request, frame_length,
};

/// Bytes gathered before a write; more queued frames wait for the next one.
const BATCH: usize = 64 * 1024;

#[derive(Debug)]
pub(super) struct Connection {
    queue: mpsc::Sender<Vec<u8>>,
    router: Arc<Mutex<Router>>,
    slots: Semaphore,
    reader: AbortHandle,
}

impl Drop for Connection {
    // Callers hold the connection while they wait, so once it is dropped nobody waits
    // on the reader; without this it would live until the daemon closed the socket.
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The router's lock. A panic while it was held cannot leave the table half-updated
/// (every method is a single map operation), so a poisoned lock is still usable.
fn lock(router: &Mutex<Router>) -> MutexGuard<'_, Router> {
    router
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Names a failed read or write: a TLS alert (e.g. the daemon refusing the client
/// certificate, which TLS 1.3 reports after the handshake) is [`ClientError::Tls`].
fn io_error(e: &std::io::Error, doing: &str) -> ClientError {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return ClientError::Tls(tls.to_string());
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            ClientError::Connection(format!("the daemon closed the connection ({doing})"))
        }
        _ => ClientError::Connection(format!("{doing}: {e}")),
    }
}

/// Removes the caller's waiter however `call` ends (answered, timed out, dropped).
struct Registration<'a> {
    router: &'a Mutex<Router>,
    id: u32,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        lock(self.router).cancel(self.id);
    }
}

impl Connection {
    /// TCP, then the TLS handshake, each within `timeout`.
    pub(super) async fn open(
        addr: &str,
        tls: &tokio_rustls::TlsConnector,
        name: ServerName<'static>,
        timeout: Duration,
        max_in_flight: usize,
    ) -> Result<Self, ClientError> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Connection(format!("no answer within {timeout:?}")))?
            .map_err(|e| ClientError::Connection(e.to_string()))?;
        // Small request frames must not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let stream = tokio::time::timeout(timeout, tls.connect(name, tcp))
            .await
            .map_err(|_| ClientError::Tls(format!("no handshake within {timeout:?}")))?
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Self::start(stream, max_in_flight))
    }

    /// Splits `stream` into the writer and reader tasks.
    pub(super) fn start<S>(stream: S, max_in_flight: usize) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let max_in_flight = max_in_flight.max(1);
        let (rd, wr) = tokio::io::split(stream);
        let (queue, rx) = mpsc::channel(max_in_flight);
        let router = Arc::new(Mutex::new(Router::default()));
        tokio::spawn(write_frames(wr, rx, Arc::clone(&router)));
        let reader = tokio::spawn(read_frames(rd, Arc::clone(&router))).abort_handle();
        Self {
            queue,
            router,
            slots: Semaphore::new(max_in_flight),
            reader,
        }
    }

    /// False once the connection failed; the pool then opens a new one.
    pub(super) fn is_alive(&self) -> bool {
        !lock(&self.router).is_closed()
    }

    /// Sends one request and waits for its response, all within `timeout` (waiting
    /// for an in-flight slot included). After a timeout the daemon may still execute
    /// the request; its late answer is dropped.
    pub(super) async fn call(
        &self,
        opcode: u16,
        body: impl FnOnce(&mut FieldsWriter<'_>),
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        // Register and encode before the first await, so `body` is never held across
        // one (the caller's future stays `Send` whatever `body` captures).
        let (id, rx) = lock(&self.router).register(opcode)?;
        let registration = Registration {
            router: &self.router,
            id,
        };
        let mut frame = Vec::with_capacity(128);
        encode_request(&mut frame, opcode, id, body)
            .map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        let exchange = async {
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| ClientError::Connection("connection closed".into()))?;
            self.queue
                .send(frame)
                .await
                .map_err(|_| ClientError::Connection("connection closed".into()))?;
            rx.await
                .unwrap_or_else(|_| Err(ClientError::Connection("connection closed".into())))
        };
        let outcome = tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(ClientError::Timeout(timeout)));
        drop(registration);
        outcome
    }
}

/// Writes queued frames: everything already queued (up to [`BATCH`] bytes) goes out in
/// one write and one flush, so pipelined callers share TLS records and syscalls.
async fn write_frames<W>(mut wr: W, mut rx: mpsc::Receiver<Vec<u8>>, router: Arc<Mutex<Router>>)
where
    W: AsyncWrite + Unpin,
{
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(frame) = rx.recv().await {
        batch.extend_from_slice(&frame);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(f) => batch.extend_from_slice(&f),
                Err(_) => break,
            }
        }
        let written = match wr.write_all(&batch).await {
            Ok(()) => wr.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            lock(&router).close(io_error(&e, "writing"));
            return;
        }
        batch.clear();
    }
    // The connection was dropped: say goodbye (TLS close_notify) so the daemon closes.
    let _ = wr.shutdown().await;
}

/// Reads response frames until the stream ends or a frame is unusable, then fails
/// every caller still waiting.
async fn read_frames<R>(mut rd: R, router: Arc<Mutex<Router>>)
where
    R: AsyncRead + Unpin,
{
    let error = loop {
        let mut prefix = [0u8; 4];
        if let Err(e) = rd.read_exact(&mut prefix).await {
            break io_error(&e, "between frames");
        }
        // The cap is checked before anything is reserved (protocol/README.md: a client
        // refuses a response larger than 1 MiB).
        let len = match frame_length(prefix, RESPONSE_HEADER_LEN, ABSOLUTE_MAX_FRAME) {
            Ok(len) => len,
            Err(e) => break ClientError::Protocol(format!("bad response frame: {e}")),
        };
        let mut payload = vec![0; len];
        if let Err(e) = rd.read_exact(&mut payload).await {
            break io_error(&e, "inside a frame");
        }
        if let Err(e) = lock(&router).route(payload) {
            break e;
        }
    };
    lock(&router).close(error);
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
