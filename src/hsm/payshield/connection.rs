//! One payShield connection: TLS (or loopback plain TCP), then a reader that splits
//! messages, plans each command ([`super::commands`]) and runs its native operation
//! through [`crate::hsm::dispatch`], and a writer that sends the answers **in request
//! order** (a payShield client matches answers by order and header, not by id).
//!
//! Counted operations (`DC`, `EC`) are decided in the order the reader reads them, as
//! on the native listener; their answers wait for the commit that covers them, and later
//! answers wait behind them. At most `max_in_flight` answers wait on one connection;
//! beyond that the reader stops reading (TCP pushes back on the client).
//!
//! Limits as on the native listener: the handshake within `handshake_timeout`, a slot
//! among `max_connections` after it, a message complete within `read_timeout` of its
//! first byte, `idle_timeout` between messages, messages of at most `max_frame` bytes
//! (and 65,535, what the prefix can say). A message over the limit cannot be answered
//! without reading it: the connection closes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;

use super::super::admission::HandshakeSlot;
use super::super::counters::{CounterError, Decided, Decision};
use super::super::dispatch::{self, Dispatched};
use super::super::ops::admin;
use super::super::ops::counted::{self, Then};
use super::super::ops::{Ctx, OpError, OpResult};
use super::super::state::Shared;
use super::super::tls;
use super::commands::{self, Answer, BlockCache, Keys, Plan};
use super::config::{PayshieldConfig, Transport};
use super::frame::{self, ErrorCode, LENGTH_PREFIX, MAX_MESSAGE};
use crate::crypto::ClearKey;
use crate::protocol::{Fields, FieldsWriter, Opcode, Status};

/// An answer ready now, or once its counted decision is durable.
enum Queued {
    Ready(Vec<u8>),
    Waiting(Pin<Box<dyn Future<Output = Vec<u8>> + Send>>),
}

/// What a connection task needs.
pub struct Connection {
    /// The daemon's state.
    pub shared: Arc<Shared>,
    /// The `[payshield]` section.
    pub config: PayshieldConfig,
    /// The key block protection key (LMK-derived).
    pub kbpk: Arc<ClearKey>,
    /// Key blocks this connection has resolved.
    pub cache: BlockCache,
}

impl Connection {
    /// Serves one accepted connection.
    pub async fn serve(
        self,
        tcp: TcpStream,
        handshake: HandshakeSlot,
        slots: Arc<Semaphore>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let limits = self.shared.config.limits.clone();
        match self.config.transport.clone() {
            Transport::Plain { identity } => {
                drop(handshake);
                let Some(_slot) = slot(&slots, &mut shutdown).await else {
                    return;
                };
                self.messages(tcp, &identity, shutdown).await;
            }
            Transport::Tls => {
                let acceptor = TlsAcceptor::from(self.shared.tls());
                let done = tokio::select! {
                    r = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)) => r,
                    _ = shutdown.changed() => return,
                };
                let Ok(Ok(stream)) = done else {
                    self.shared.metrics.handshake_failures.inc();
                    return;
                };
                drop(handshake);
                let identity = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(tls::identity)
                    .unwrap_or_default();
                let Some(_slot) = slot(&slots, &mut shutdown).await else {
                    return;
                };
                self.messages(stream, &identity, shutdown).await;
            }
        }
    }

    async fn messages<S>(&self, stream: S, identity: &str, mut shutdown: watch::Receiver<bool>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = &self.shared;
        let limits = shared.config.limits.clone();
        let max = limits.max_frame.min(MAX_MESSAGE);
        shared.metrics.connections.inc();
        let (mut rd, wr) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel(limits.max_in_flight);
        let writer = tokio::spawn(write_answers(wr, rx));
        let mut input: Vec<u8> = Vec::with_capacity(4096);
        let mut frame_started: Option<Instant> = None;
        'connection: loop {
            let read_at = Instant::now();
            let mut consumed = 0;
            while let Some((prefix, after)) = input[consumed..].split_first_chunk::<LENGTH_PREFIX>()
            {
                let len = usize::from(u16::from_be_bytes(*prefix));
                if len > max {
                    break 'connection;
                }
                let Some(message) = after.get(..len) else {
                    break;
                };
                let queued = self.answer(identity, message, read_at);
                consumed += LENGTH_PREFIX + len;
                if tx.send(queued).await.is_err() {
                    break 'connection;
                }
            }
            if consumed > 0 {
                input.drain(..consumed);
            }
            let deadline = if input.is_empty() {
                frame_started = None;
                Instant::now() + limits.idle_timeout
            } else {
                if consumed > 0 || frame_started.is_none() {
                    frame_started = Some(read_at);
                }
                frame_started.unwrap_or(read_at) + limits.read_timeout
            };
            input.reserve(4096);
            tokio::select! {
                _ = shutdown.changed() => break,
                r = tokio::time::timeout_at(deadline.into(), rd.read_buf(&mut input)) => {
                    if !matches!(r, Ok(Ok(n)) if n > 0) {
                        break;
                    }
                }
            }
        }
        drop(tx);
        let _ = writer.await;
        shared.metrics.connections.dec();
    }

    /// The answer to one message.
    fn answer(&self, identity: &str, message: &[u8], read_at: Instant) -> Queued {
        let h = self.config.header_length;
        let shared = Arc::clone(&self.shared);
        let metrics = &shared.metrics;
        let request = match frame::parse(message, h) {
            Ok(r) => r,
            Err(frame::TooShort(header)) => {
                metrics.record(None, Status::MalformedField, read_at);
                return Queued::Ready(encoded(header, h, *b"ZZ", ErrorCode::INVALID_INPUT, &[]));
            }
        };
        let code = frame::response_code(request.command);
        let header = request.header.to_vec();
        let ring = shared.ring();
        let keys = Keys {
            kbpk: &self.kbpk,
            ring: &ring,
            cache: Some(&self.cache),
            shared: Some(&shared),
        };
        let (op, body, answer) = match commands::plan(request.command, request.data, &keys) {
            Plan::Refuse { op, error } => {
                let status = if op.is_some() {
                    Status::MalformedField
                } else {
                    Status::UnknownOperation
                };
                metrics.record(op, status, read_at);
                return Queued::Ready(encoded(&header, h, code, error, &[]));
            }
            Plan::Native { op, body, answer } => (op, body, answer),
        };
        let policy = shared.policy();
        let role = match dispatch::role_for(&policy, identity, op) {
            Ok(r) => r,
            Err(e) => {
                metrics.record(Some(op), e.status, read_at);
                let error = commands::error_code(&e);
                return Queued::Ready(encoded(&header, h, code, error, &[]));
            }
        };
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ctx = Ctx {
            ring: &ring,
            secrets: &shared.secrets,
            config: &shared.config,
            store: shared.counters.as_ref(),
            namer: &shared.card_namer,
            metrics: &shared.metrics,
            role,
            now_unix,
            uptime: shared.started.elapsed().as_secs(),
        };
        let mut fields = Vec::new();
        let mut w = FieldsWriter::new(&mut fields);
        let mut d = dispatch::dispatch(&ctx, op, &body, &mut w);
        if w.finish().is_err() {
            d = Dispatched::Answered(Err(OpError::new(Status::Internal, "answer too long")));
        }
        let finish = Finish {
            header,
            header_length: h,
            code,
            op,
            answer,
            read_at,
        };
        match d {
            Dispatched::Answered(r) => Queued::Ready(finish.frame(&shared, r, &fields)),
            Dispatched::Commit {
                request,
                computed,
                then,
            } => match shared.counters.decide(request) {
                Decided::Now(decided) => {
                    let r = decided_answer(computed, then, decided, &mut fields);
                    Queued::Ready(finish.frame(&shared, r, &fields))
                }
                Decided::AfterCommit(pending) => {
                    let shared = Arc::clone(&shared);
                    Queued::Waiting(Box::pin(async move {
                        let decided = Decided::AfterCommit(pending).resolved().await;
                        let r = decided_answer(computed, then, decided, &mut fields);
                        finish.frame(&shared, r, &fields)
                    }))
                }
            },
            // Key administration (`BU` is key.list, `A0` key.generate) writes files
            // with fsync: on a blocking thread, as on the native listener.
            Dispatched::Admin(req) => {
                let identity = identity.to_owned();
                Queued::Waiting(Box::pin(async move {
                    let run = Arc::clone(&shared);
                    let work = tokio::task::spawn_blocking(move || {
                        let mut fields = Vec::new();
                        let r = admin::execute(
                            &run,
                            &identity,
                            &req,
                            &mut FieldsWriter::new(&mut fields),
                        );
                        if r.is_ok() {
                            tracing::info!(
                                identity = &*identity,
                                operation = op.name(),
                                "key administration"
                            );
                        }
                        (r, fields)
                    });
                    match work.await {
                        Ok((r, fields)) => finish.frame(&shared, r, &fields),
                        Err(_) => {
                            let e = OpError::new(Status::Internal, "key administration failed");
                            finish.frame(&shared, Err(e), &[])
                        }
                    }
                }))
            }
        }
    }
}

/// A slot among `max_connections`, waiting while all are taken.
async fn slot(
    slots: &Arc<Semaphore>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    tokio::select! {
        s = Arc::clone(slots).acquire_owned() => s.ok(),
        _ = shutdown.changed() => None,
    }
}

/// How a native result becomes the command's answer frame.
struct Finish {
    header: Vec<u8>,
    header_length: usize,
    code: [u8; 2],
    op: Opcode,
    answer: Answer,
    read_at: Instant,
}

impl Finish {
    fn frame(&self, shared: &Shared, r: OpResult, fields: &[u8]) -> Vec<u8> {
        let status = r.as_ref().err().map_or(Status::Ok, |e| e.status);
        shared.metrics.record(Some(self.op), status, self.read_at);
        let (error, data) = match r {
            Ok(()) => match Fields::parse_lenient(fields)
                .map_err(|_| ErrorCode::INTERNAL)
                .and_then(|f| (self.answer)(&f))
            {
                Ok(data) => (ErrorCode::OK, data),
                Err(e) => (e, Vec::new()),
            },
            Err(e) => (commands::error_code(&e), Vec::new()),
        };
        encoded(&self.header, self.header_length, self.code, error, &data)
    }
}

fn encoded(header: &[u8], h: usize, code: [u8; 2], error: ErrorCode, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(h + 8 + data.len());
    frame::encode(&mut out, header, h, code, error, data);
    out
}

/// A counted operation's result once the store has decided.
fn decided_answer(
    computed: OpResult,
    then: Then,
    decided: Result<Decision, CounterError>,
    fields: &mut Vec<u8>,
) -> OpResult {
    let mut w = FieldsWriter::new(fields);
    let r = counted::answer(computed, then, decided, &mut w);
    match w.finish() {
        Ok(()) => r,
        Err(_) => Err(OpError::new(Status::Internal, "answer too long")),
    }
}

/// Writes answers in order, merging those ready at once into one write.
async fn write_answers<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<Queued>) {
    while let Some(first) = rx.recv().await {
        let mut buf = resolve(first).await;
        while buf.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(Queued::Ready(more)) => buf.extend_from_slice(&more),
                Ok(waiting) => {
                    if wr.write_all(&buf).await.is_err() {
                        return drain(rx).await;
                    }
                    buf = resolve(waiting).await;
                }
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            return drain(rx).await;
        }
    }
    let _ = wr.shutdown().await;
}

async fn resolve(q: Queued) -> Vec<u8> {
    match q {
        Queued::Ready(b) => b,
        Queued::Waiting(f) => f.await,
    }
}

/// A dead peer: keep taking answers so the reader never waits on it.
async fn drain(mut rx: mpsc::Receiver<Queued>) {
    while rx.recv().await.is_some() {}
}
