//! One client connection: the TLS handshake, a reader that parses and executes
//! requests, and a writer task that batches responses. Requests that touch disk run on
//! blocking threads, so later fast requests overtake them (responses carry request ids).
//!
//! The reader takes whatever the socket has in one read and executes every complete
//! request in it before reading again; the answers of those executed at once go to the
//! writer together, in one buffer. So a pipelining client costs one read, one buffer
//! and one write per batch, not per request, and the role, key ring and clock are
//! looked up once per batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use super::counters::Decided;
use super::keyring::KeyRing;
use super::ops::{self, Ctx, OpError, OpResult, counted};
use super::policy::Policy;
use super::state::Shared;
use super::tls;
use crate::protocol::{
    Fields, FieldsWriter, FrameError, LENGTH_PREFIX, Opcode, REQUEST_HEADER_LEN, Status, VERSION,
    decode_request, encode_response_with, frame_length,
};

/// Answers gathered before they are handed to the writer, even mid-batch.
const HAND_OVER_AT: usize = 32 * 1024;
/// Room asked for before each read when no partial frame says how much is needed.
const READ_CHUNK: usize = 16 * 1024;

/// Answers on their way to the writer, and how many frames they hold.
type Answers = (Vec<u8>, usize);
/// Buffers queued for the writer before the reader (or a task with a late answer)
/// waits: with a peer that stops reading, this and [`HAND_OVER_AT`] bound what one
/// connection holds in memory, and the reader stops reading.
const WRITER_QUEUE: usize = 16;

/// Serves one accepted TCP connection until the peer leaves, a limit closes it, or
/// shutdown is signalled (in-flight requests are answered first).
pub async fn serve(shared: Arc<Shared>, tcp: TcpStream, mut shutdown: watch::Receiver<bool>) {
    let limits = shared.config.limits.clone();
    let acceptor = TlsAcceptor::from(shared.tls());
    let stream = match tokio::time::timeout(limits.read_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        _ => {
            shared.metrics.handshake_failures.inc();
            return;
        }
    };
    let identity = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(tls::identity)
        .unwrap_or_default();
    shared.metrics.connections.inc();
    tracing::debug!(identity, "connection open");

    let (mut rd, wr) = tokio::io::split(stream);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<Answers>(WRITER_QUEUE);
    let writer = tokio::spawn(write_loop(wr, rx, Arc::clone(&in_flight)));
    let reader = Reader {
        shared: Arc::clone(&shared),
        identity: Arc::from(identity.as_str()),
        tx,
        in_flight,
    };
    // Bytes read and not yet consumed are input[consumed..]; the buffer never holds
    // more than one frame beyond what a read brought (frames are checked against
    // max_frame before room is made for them).
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut consumed = 0;
    'connection: loop {
        let mut batch = reader.batch();
        let mut needed = READ_CHUNK;
        while let Some((prefix, after)) = input[consumed..].split_first_chunk::<LENGTH_PREFIX>() {
            let len = match frame_length(*prefix, REQUEST_HEADER_LEN, limits.max_frame) {
                Ok(len) => len,
                Err(e) => {
                    // The stream cannot be re-synchronised: answer with id 0 and close.
                    reader.fatal(&e, &mut batch);
                    reader.hand_over(&mut batch).await;
                    break 'connection;
                }
            };
            let Some(payload) = after.get(..len) else {
                needed = len - after.len();
                break;
            };
            reader.request(payload, &mut batch);
            consumed += LENGTH_PREFIX + len;
            if batch.pending.buf.len() >= HAND_OVER_AT && !reader.hand_over(&mut batch).await {
                break 'connection;
            }
        }
        if !reader.hand_over(&mut batch).await {
            break;
        }
        // A pipelining peer keeps the socket readable, so without this the reader
        // would run batch after batch without returning to the scheduler: the writer
        // and other connections would wait on its thread while the other threads idle.
        tokio::task::yield_now().await;
        if consumed == input.len() {
            input.clear();
            // Room made for one large frame is not kept by an idle connection.
            input.shrink_to(READ_CHUNK);
            consumed = 0;
        } else if consumed > 0 {
            input.drain(..consumed);
            consumed = 0;
        }
        // Between frames the idle timeout applies; inside one, the read timeout.
        let wait = if input.is_empty() {
            limits.idle_timeout
        } else {
            limits.read_timeout
        };
        input.reserve(needed);
        tokio::select! {
            _ = shutdown.changed() => break,
            r = tokio::time::timeout(wait, rd.read_buf(&mut input)) => {
                if !matches!(r, Ok(Ok(n)) if n > 0) {
                    break;
                }
            }
        }
    }
    drop(reader);
    let _ = writer.await;
    shared.metrics.connections.dec();
    tracing::debug!(identity, "connection closed");
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Answers>,
    in_flight: Arc<AtomicUsize>,
) {
    while let Some((mut buf, mut n)) = rx.recv().await {
        while buf.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok((more, k)) => {
                    buf.extend_from_slice(&more);
                    n += k;
                }
                Err(_) => break,
            }
        }
        // Counted as answered before the bytes go out: a client that has read every
        // answer may send its next window at once without meeting `overloaded`.
        in_flight.fetch_sub(n, Ordering::AcqRel);
        let ok = wr.write_all(&buf).await.is_ok() && wr.flush().await.is_ok();
        if !ok {
            // Keep draining so senders never block on a dead peer.
            while rx.recv().await.is_some() {}
            return;
        }
    }
    let _ = wr.shutdown().await;
}

struct Reader {
    shared: Arc<Shared>,
    identity: Arc<str>,
    tx: mpsc::Sender<Answers>,
    in_flight: Arc<AtomicUsize>,
}

/// What the requests of one read share: the answers executed at once, and the
/// policy, key ring and clock, read once.
struct Batch {
    pending: Pending,
    policy: Arc<Policy>,
    ring: Arc<KeyRing>,
    now_unix: u64,
    uptime: u64,
    read_at: Instant,
}

/// Answers executed at once, not yet handed to the writer.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    frames: usize,
    /// The fields of a counted operation's answer, before its frame is written.
    scratch: Vec<u8>,
}

/// Appends one answer frame to `buf`; an answer that cannot be encoded becomes an
/// `internal` answer.
fn respond(
    buf: &mut Vec<u8>,
    opcode: u16,
    id: u32,
    body: impl FnOnce(&mut FieldsWriter<'_>) -> Status,
) -> Status {
    let start = buf.len();
    match encode_response_with(buf, opcode, id, body) {
        Ok(s) => s,
        Err(_) => {
            buf.truncate(start);
            let _ = encode_response_with(buf, opcode, id, |w| {
                OpError::new(Status::Internal, "response could not be encoded").write(w);
                Status::Internal
            });
            Status::Internal
        }
    }
}

fn error_frame(buf: &mut Vec<u8>, opcode: u16, id: u32, e: &OpError) -> Status {
    respond(buf, opcode, id, |w| {
        e.write(w);
        e.status
    })
}

impl Reader {
    /// A new batch, with the policy, key ring and clock of this moment.
    fn batch(&self) -> Batch {
        Batch {
            pending: Pending::default(),
            policy: self.shared.policy(),
            ring: self.shared.ring(),
            now_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            uptime: self.shared.started.elapsed().as_secs(),
            read_at: Instant::now(),
        }
    }

    /// Gives the batch's answers to the writer; `false` once the writer is gone.
    async fn hand_over(&self, batch: &mut Batch) -> bool {
        let p = &mut batch.pending;
        if p.frames == 0 {
            return true;
        }
        // The next buffer starts at this one's size rather than growing from empty.
        let next = Vec::with_capacity(p.buf.len());
        let answers = (std::mem::replace(&mut p.buf, next), p.frames);
        p.frames = 0;
        self.tx.send(answers).await.is_ok()
    }

    /// Queues an answer executed at once; counts it in flight until it is written.
    fn answer(&self, batch: &mut Batch, op: Option<Opcode>, opcode: u16, id: u32, e: &OpError) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let status = error_frame(&mut batch.pending.buf, opcode, id, e);
        batch.pending.frames += 1;
        self.shared.metrics.record(op, status, batch.read_at);
    }

    fn fatal(&self, e: &FrameError, batch: &mut Batch) {
        let err = OpError::new(Status::MalformedField, e.to_string());
        self.answer(batch, None, 0, 0, &err);
    }

    /// Handles one request payload: answered into the batch, or handed to a task that
    /// answers through the writer when it is done.
    fn request(&self, payload: &[u8], batch: &mut Batch) {
        let (header, body) = match decode_request(payload) {
            Ok(h) => h,
            Err(e) => {
                let id = payload
                    .get(4..8)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, u32::from_be_bytes);
                let opcode = payload
                    .get(2..4)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                let err = OpError::new(Status::MalformedField, e.to_string());
                return self.answer(batch, Opcode::from_code(opcode), opcode, id, &err);
            }
        };
        let (opcode, id) = (header.opcode, header.request_id);
        let op = Opcode::from_code(opcode);
        let early = if header.version != VERSION {
            Some(OpError::new(
                Status::UnsupportedVersion,
                format!(
                    "protocol version {} is not supported; this daemon speaks {VERSION}",
                    header.version
                ),
            ))
        } else if self.in_flight.load(Ordering::Acquire) >= self.shared.config.limits.max_in_flight
        {
            Some(OpError::new(
                Status::Overloaded,
                "too many requests in flight on this connection",
            ))
        } else if op.is_none() {
            Some(OpError::new(
                Status::UnknownOperation,
                format!("unknown opcode 0x{opcode:04X}"),
            ))
        } else {
            None
        };
        if let Some(e) = early {
            return self.answer(batch, op, opcode, id, &e);
        }
        let Some(op) = op else { return };
        let role = match batch.policy.role(&self.identity) {
            Some(r) if r.allows_operation(op) => r,
            Some(r) => {
                let e = OpError::new(
                    Status::NotAuthorised,
                    format!("role {} may not {op}", r.name),
                );
                return self.answer(batch, Some(op), opcode, id, &e);
            }
            None => {
                let e = OpError::new(Status::NotAuthorised, "this certificate has no role");
                return self.answer(batch, Some(op), opcode, id, &e);
            }
        };
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if ops::is_admin(op) {
            return self.admin(op, opcode, id, body.to_vec(), role.clone(), batch.read_at);
        }
        let ctx = Ctx {
            ring: &batch.ring,
            secrets: &self.shared.secrets,
            role,
            now_unix: batch.now_unix,
            uptime: batch.uptime,
        };
        if counted::handles(op) {
            return self.counted(op, id, body, &ctx, batch.read_at, &mut batch.pending);
        }
        let status = respond(&mut batch.pending.buf, opcode, id, |w| {
            let r = Fields::parse_strict(body)
                .map_err(OpError::from)
                .and_then(|f| {
                    ops::authorise_keys(role, &f, op)?;
                    ops::execute(&ctx, op, &f, w)
                });
            finish(w, r)
        });
        batch.pending.frames += 1;
        self.shared.metrics.record(Some(op), status, batch.read_at);
    }

    /// Key administration writes files with fsync: on a blocking thread.
    fn admin(
        &self,
        op: Opcode,
        opcode: u16,
        id: u32,
        body: Vec<u8>,
        role: Arc<super::policy::Role>,
        started: Instant,
    ) {
        let shared = Arc::clone(&self.shared);
        let identity = Arc::clone(&self.identity);
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let mut frame = Vec::new();
            let status = respond(&mut frame, opcode, id, |w| {
                let r = Fields::parse_strict(&body)
                    .map_err(OpError::from)
                    .and_then(|f| {
                        ops::authorise_keys(&role, &f, op)?;
                        ops::admin::execute(&shared, &identity, op, &f, w)
                    });
                finish(w, r)
            });
            shared.metrics.record(Some(op), status, started);
            if status == Status::Ok {
                tracing::info!(
                    identity = &*identity,
                    operation = op.name(),
                    "key administration"
                );
            }
            let _ = tx.blocking_send((frame, 1));
        });
    }

    /// A counted operation: answered now when nothing must be written, otherwise after
    /// the counter store has made the change durable (the reader goes on meanwhile).
    fn counted(
        &self,
        op: Opcode,
        id: u32,
        body: &[u8],
        ctx: &Ctx<'_>,
        read_at: Instant,
        out: &mut Pending,
    ) {
        let shared = &self.shared;
        let cc = counted::CountCtx {
            store: shared.counters.as_ref(),
            card_key: &shared.card_key,
            lockout: &shared.config.lockout,
        };
        out.scratch.clear();
        let plan = {
            let mut w = FieldsWriter::new(&mut out.scratch);
            let plan = match Fields::parse_strict(body)
                .map_err(OpError::from)
                .and_then(|f| ops::authorise_keys(ctx.role, &f, op).map(|()| f))
            {
                Ok(f) => counted::plan(ctx, &cc, op, &f, &mut w),
                Err(e) => counted::Plan::Now(Err(e)),
            };
            if w.finish().is_err() {
                counted::Plan::Now(Err(OpError::new(
                    Status::Internal,
                    "response could not be encoded",
                )))
            } else {
                plan
            }
        };
        let (request, computed, then) = match plan {
            counted::Plan::Now(r) => return self.counted_now(op, id, r, read_at, out),
            counted::Plan::Decide {
                request,
                computed,
                then,
            } => (request, computed, then),
        };
        match shared.counters.decide(request) {
            Decided::Now(decided) => {
                let fields = &out.scratch;
                let status = respond(&mut out.buf, op.code(), id, |w| {
                    w.encoded(fields);
                    let r = counted::answer(computed, then, decided, w);
                    finish(w, r)
                });
                out.frames += 1;
                shared.metrics.record(Some(op), status, read_at);
            }
            Decided::AfterCommit(pending) => {
                // The answer waits for the commit that covers its decision; the reader
                // goes on meanwhile.
                let shared = Arc::clone(&self.shared);
                let tx = self.tx.clone();
                let fields = std::mem::take(&mut out.scratch);
                tokio::spawn(async move {
                    let decided = Decided::AfterCommit(pending).resolved().await;
                    let mut frame = Vec::new();
                    let status = respond(&mut frame, op.code(), id, |w| {
                        w.encoded(&fields);
                        let r = counted::answer(computed, then, decided, w);
                        finish(w, r)
                    });
                    shared.metrics.record(Some(op), status, read_at);
                    let _ = tx.send((frame, 1)).await;
                });
            }
        }
    }

    /// A counted operation answered without a decision.
    fn counted_now(&self, op: Opcode, id: u32, r: OpResult, read_at: Instant, out: &mut Pending) {
        let fields = &out.scratch;
        let status = respond(&mut out.buf, op.code(), id, |w| {
            w.encoded(fields);
            finish(w, r)
        });
        out.frames += 1;
        self.shared.metrics.record(Some(op), status, read_at);
    }
}

fn finish(w: &mut FieldsWriter<'_>, r: Result<(), OpError>) -> Status {
    match r {
        Ok(()) => Status::Ok,
        Err(e) => {
            w.reset();
            e.write(w);
            e.status
        }
    }
}
