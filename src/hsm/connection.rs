//! One client connection: the TLS handshake, a reader that parses and executes
//! requests, and a writer task that batches responses. Requests that touch disk run on
//! blocking threads, so later fast requests overtake them (responses carry request ids).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use super::ops::{self, Ctx, OpError, counted};
use super::state::Shared;
use super::tls;
use crate::protocol::{
    Fields, FrameError, LENGTH_PREFIX, Opcode, REQUEST_HEADER_LEN, Status, VERSION, decode_request,
    encode_response_with, frame_length,
};

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
    let (tx, rx) = mpsc::channel::<Vec<u8>>(limits.max_in_flight + 16);
    let writer = tokio::spawn(write_loop(wr, rx, Arc::clone(&in_flight)));
    let reader = Reader {
        shared: Arc::clone(&shared),
        identity: Arc::from(identity.as_str()),
        tx,
        in_flight,
    };
    let mut payload = Vec::new();
    loop {
        let mut prefix = [0u8; LENGTH_PREFIX];
        tokio::select! {
            _ = shutdown.changed() => break,
            r = tokio::time::timeout(limits.idle_timeout, rd.read_exact(&mut prefix)) => {
                if !matches!(r, Ok(Ok(_))) {
                    break;
                }
            }
        }
        let len = match frame_length(prefix, REQUEST_HEADER_LEN, limits.max_frame) {
            Ok(len) => len,
            Err(e) => {
                // The stream cannot be re-synchronised: answer with id 0 and close.
                reader.fatal(&e).await;
                break;
            }
        };
        payload.resize(len, 0);
        match tokio::time::timeout(limits.read_timeout, rd.read_exact(&mut payload)).await {
            Ok(Ok(_)) => {}
            _ => break,
        }
        if !reader.request(&payload).await {
            break;
        }
    }
    drop(reader);
    let _ = writer.await;
    shared.metrics.connections.dec();
    tracing::debug!(identity, "connection closed");
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Vec<u8>>,
    in_flight: Arc<AtomicUsize>,
) {
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(frame) = rx.recv().await {
        buf.extend_from_slice(&frame);
        let mut n = 1;
        while buf.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(f) => {
                    buf.extend_from_slice(&f);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        let ok = wr.write_all(&buf).await.is_ok() && wr.flush().await.is_ok();
        in_flight.fetch_sub(n, Ordering::AcqRel);
        buf.clear();
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
    tx: mpsc::Sender<Vec<u8>>,
    in_flight: Arc<AtomicUsize>,
}

fn respond(
    opcode: u16,
    id: u32,
    body: impl FnOnce(&mut crate::protocol::FieldsWriter<'_>) -> Status,
) -> (Vec<u8>, Status) {
    let mut buf = Vec::with_capacity(128);
    match encode_response_with(&mut buf, opcode, id, body) {
        Ok(s) => (buf, s),
        Err(_) => {
            let _ = encode_response_with(&mut buf, opcode, id, |w| {
                OpError::new(Status::Internal, "response could not be encoded").write(w);
                Status::Internal
            });
            (buf, Status::Internal)
        }
    }
}

fn error_frame(opcode: u16, id: u32, e: &OpError) -> (Vec<u8>, Status) {
    respond(opcode, id, |w| {
        e.write(w);
        e.status
    })
}

impl Reader {
    async fn send(&self, frame: Vec<u8>) -> bool {
        self.tx.send(frame).await.is_ok()
    }

    async fn fatal(&self, e: &FrameError) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let (frame, _) = error_frame(0, 0, &OpError::new(Status::MalformedField, e.to_string()));
        self.send(frame).await;
    }

    fn record(&self, op: &str, status: Status, started: Instant) {
        self.shared.metrics.record(op, status, started);
    }

    /// Handles one request payload; `false` closes the connection.
    async fn request(&self, payload: &[u8]) -> bool {
        let started = Instant::now();
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
                self.in_flight.fetch_add(1, Ordering::AcqRel);
                let err = OpError::new(Status::MalformedField, e.to_string());
                return self.send(error_frame(opcode, id, &err).0).await;
            }
        };
        let (opcode, id) = (header.opcode, header.request_id);
        let already = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let refuse = |status: Status, message: String| {
            error_frame(opcode, id, &OpError::new(status, message))
        };
        let op = Opcode::from_code(opcode);
        let op_name = op.map_or("unknown", Opcode::name);
        let early = if header.version != VERSION {
            Some(refuse(
                Status::UnsupportedVersion,
                format!(
                    "protocol version {} is not supported; this daemon speaks {VERSION}",
                    header.version
                ),
            ))
        } else if already >= self.shared.config.limits.max_in_flight {
            Some(refuse(
                Status::Overloaded,
                "too many requests in flight on this connection".into(),
            ))
        } else if op.is_none() {
            Some(refuse(
                Status::UnknownOperation,
                format!("unknown opcode 0x{opcode:04X}"),
            ))
        } else {
            None
        };
        if let Some((frame, status)) = early {
            self.record(op_name, status, started);
            return self.send(frame).await;
        }
        let Some(op) = op else { return false };
        let policy = self.shared.policy();
        let role = match policy.role(&self.identity) {
            Some(r) if r.allows_operation(op) => r.clone(),
            Some(r) => {
                let (frame, status) = refuse(
                    Status::NotAuthorised,
                    format!("role {} may not {op}", r.name),
                );
                self.record(op_name, status, started);
                return self.send(frame).await;
            }
            None => {
                let (frame, status) =
                    refuse(Status::NotAuthorised, "this certificate has no role".into());
                self.record(op_name, status, started);
                return self.send(frame).await;
            }
        };
        if ops::is_admin(op) {
            let body = body.to_vec();
            let shared = Arc::clone(&self.shared);
            let identity = Arc::clone(&self.identity);
            let tx = self.tx.clone();
            tokio::task::spawn_blocking(move || {
                let (frame, status) = respond(opcode, id, |w| {
                    let r = Fields::parse_strict(&body)
                        .map_err(OpError::from)
                        .and_then(|f| {
                            ops::authorise_keys(&role, &f, op)?;
                            ops::admin::execute(&shared, &identity, op, &f, w)
                        });
                    finish(w, r)
                });
                shared.metrics.record(op.name(), status, started);
                if status == Status::Ok {
                    tracing::info!(
                        identity = &*identity,
                        operation = op.name(),
                        "key administration"
                    );
                }
                let _ = tx.blocking_send(frame);
            });
            return true;
        }
        let ring = self.shared.ring();
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ctx = Ctx {
            ring: &ring,
            secrets: &self.shared.secrets,
            role: &role,
            now_unix,
            uptime: self.shared.started.elapsed().as_secs(),
        };
        if counted::handles(op) {
            return self.counted(op, opcode, id, body, &ctx, started).await;
        }
        let (frame, status) = respond(opcode, id, |w| {
            let r = Fields::parse_strict(body)
                .map_err(OpError::from)
                .and_then(|f| {
                    ops::authorise_keys(&role, &f, op)?;
                    ops::execute(&ctx, op, &f, w)
                });
            finish(w, r)
        });
        self.record(op_name, status, started);
        self.send(frame).await
    }

    /// A counted operation: answered now when nothing must be written, otherwise after
    /// the counter store has made the change durable (the reader goes on meanwhile).
    async fn counted(
        &self,
        op: Opcode,
        opcode: u16,
        id: u32,
        body: &[u8],
        ctx: &Ctx<'_>,
        started: Instant,
    ) -> bool {
        let shared = &self.shared;
        let cc = counted::CountCtx {
            store: &shared.counters,
            card_key: &shared.card_key,
            lockout: &shared.config.lockout,
            guard: &shared.guard,
        };
        let mut fields_out = Vec::new();
        let plan = {
            let mut w = crate::protocol::FieldsWriter::new(&mut fields_out);
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
        match plan {
            counted::Plan::Now(r) => {
                let (frame, status) = respond(opcode, id, |w| {
                    w.encoded(&fields_out);
                    finish(w, r)
                });
                self.record(op.name(), status, started);
                self.send(frame).await
            }
            counted::Plan::Commit(change, then) => {
                let shared = Arc::clone(&self.shared);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result = shared.counters.apply(change).await;
                    if matches!(then, counted::Then::Failed(_)) {
                        use super::counters::Outcome;
                        if let Ok(
                            Outcome::Pin(t)
                            | Outcome::Dcvv2(super::counters::Dcvv2State { tries: t, .. }, _),
                        ) = &result
                            && t.locked
                        {
                            shared.metrics.lockouts.inc();
                        }
                    }
                    let (frame, status) = respond(opcode, id, |w| {
                        w.encoded(&fields_out);
                        let r = counted::after_commit(then, result, w);
                        finish(w, r)
                    });
                    shared.metrics.record(op.name(), status, started);
                    let _ = tx.send(frame).await;
                });
                true
            }
        }
    }
}

fn finish(w: &mut crate::protocol::FieldsWriter<'_>, r: Result<(), OpError>) -> Status {
    match r {
        Ok(()) => Status::Ok,
        Err(e) => {
            w.reset();
            e.write(w);
            e.status
        }
    }
}
