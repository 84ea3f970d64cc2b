//! One pipelined connection: a writer task that batches queued frames, a reader task
//! that routes each response to its waiting caller by request id.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{ClientConfig, ClientError, Response};
use crate::protocol::{
    ABSOLUTE_MAX_FRAME, FieldsWriter, RESPONSE_HEADER_LEN, decode_response, encode_request,
    frame_length,
};

type Pending = Arc<std::sync::Mutex<HashMap<u32, oneshot::Sender<Result<Response, ClientError>>>>>;

#[derive(Debug)]
pub(super) struct Connection {
    tx: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU32,
    alive: Arc<AtomicBool>,
    slots: Arc<Semaphore>,
}

fn lock(
    p: &Pending,
) -> std::sync::MutexGuard<'_, HashMap<u32, oneshot::Sender<Result<Response, ClientError>>>> {
    match p.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Connection {
    pub(super) async fn open(
        addr: &str,
        tls: &tokio_rustls::TlsConnector,
        name: ServerName<'static>,
        config: &ClientConfig,
    ) -> Result<Self, ClientError> {
        let conn_err = |e: String| ClientError::Connection(e);
        let tcp = tokio::time::timeout(config.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout(config.timeout))?
            .map_err(|e| conn_err(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let stream = tokio::time::timeout(config.timeout, tls.connect(name, tcp))
            .await
            .map_err(|_| ClientError::Timeout(config.timeout))?
            .map_err(|e| conn_err(format!("TLS: {e}")))?;
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(config.max_in_flight.max(1));
        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));

        let writer_alive = Arc::clone(&alive);
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(64 * 1024);
            while let Some(frame) = rx.recv().await {
                buf.extend_from_slice(&frame);
                while buf.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(f) => buf.extend_from_slice(&f),
                        Err(_) => break,
                    }
                }
                if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
                    writer_alive.store(false, Ordering::Release);
                    return;
                }
                buf.clear();
            }
            let _ = wr.shutdown().await;
        });

        let (reader_pending, reader_alive) = (Arc::clone(&pending), Arc::clone(&alive));
        tokio::spawn(async move {
            let mut payload = Vec::new();
            let reason = loop {
                let mut prefix = [0u8; 4];
                if rd.read_exact(&mut prefix).await.is_err() {
                    break "the daemon closed the connection".to_owned();
                }
                let len = match frame_length(prefix, RESPONSE_HEADER_LEN, ABSOLUTE_MAX_FRAME) {
                    Ok(l) => l,
                    Err(e) => break format!("bad frame from the daemon: {e}"),
                };
                payload.resize(len, 0);
                if rd.read_exact(&mut payload).await.is_err() {
                    break "the daemon closed the connection mid-frame".to_owned();
                }
                let header = match decode_response(&payload) {
                    Ok((h, _)) => h,
                    Err(e) => break format!("bad frame from the daemon: {e}"),
                };
                let waiter = lock(&reader_pending).remove(&header.request_id);
                if let Some(w) = waiter {
                    let _ = w.send(Response::new(header.status, std::mem::take(&mut payload)));
                } else if header.request_id == 0 {
                    // An id-0 answer reports a frame the daemon could not delimit; it
                    // closes the connection next.
                    break "the daemon refused a frame and closed the connection".to_owned();
                }
            };
            reader_alive.store(false, Ordering::Release);
            for (_, w) in lock(&reader_pending).drain() {
                let _ = w.send(Err(ClientError::Connection(reason.clone())));
            }
        });

        Ok(Self {
            tx,
            pending,
            next_id: AtomicU32::new(1),
            alive,
            slots: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
        })
    }

    pub(super) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub(super) async fn call(
        &self,
        opcode: u16,
        body: impl FnOnce(&mut FieldsWriter<'_>),
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| ClientError::Connection("connection closed".into()))?;
        // Id 0 is reserved for the daemon's "could not delimit" answers.
        let id = loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                break id;
            }
        };
        let mut frame = Vec::with_capacity(128);
        encode_request(&mut frame, opcode, id, body)
            .map_err(|e| ClientError::Protocol(format!("request: {e}")))?;
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        if !self.is_alive() || self.tx.send(frame).await.is_err() {
            lock(&self.pending).remove(&id);
            return Err(ClientError::Connection("connection closed".into()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ClientError::Connection("connection closed".into())),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(ClientError::Timeout(timeout))
            }
        }
    }
}
