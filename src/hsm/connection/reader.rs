//! Executing the requests of one connection: each complete request of a read is
//! parsed, authorised and executed in turn, its answer appended to the batch's buffer,
//! which goes to the writer in one piece. Requests that must wait (key administration
//! on a blocking thread, a counted decision until its commit) answer through the
//! outbox when they are done, so later fast requests overtake them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::super::counters::Decided;
use super::super::keyring::KeyRing;
use super::super::metrics::Metrics;
use super::super::ops::{self, Ctx, OpError, OpResult, counted};
use super::super::policy::{Policy, Role};
use super::super::state::Shared;
use super::outbox::Outbox;
use crate::protocol::{
    Fields, FieldsWriter, FrameError, Opcode, Status, VERSION, decode_request, encode_response_with,
};

/// Answers gathered before they are handed to the writer, even mid-batch.
pub const HAND_OVER_AT: usize = 16 * 1024;

/// The request side of one connection.
pub struct Reader {
    pub(super) shared: Arc<Shared>,
    pub(super) identity: Arc<str>,
    pub(super) outbox: Outbox,
    pub(super) in_flight: Arc<AtomicUsize>,
}
/// What the requests of one read share: the answers executed at once, and the
/// policy, key ring and clock, read once.
pub struct Batch {
    pub(super) pending: Pending,
    policy: Arc<Policy>,
    ring: Arc<KeyRing>,
    now_unix: u64,
    uptime: u64,
    pub(super) read_at: Instant,
}

/// Answers executed at once, not yet handed to the writer.
#[derive(Default)]
pub struct Pending {
    pub(super) buf: Vec<u8>,
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
    pub fn batch(&self) -> Batch {
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

    /// Gives the batch's answers to the writer, waiting while the connection's answer
    /// budget is spent; `false` once the writer is gone.
    pub async fn hand_over(&self, batch: &mut Batch) -> bool {
        let p = &mut batch.pending;
        if p.frames == 0 {
            return true;
        }
        // The next buffer starts at this one's size rather than growing from empty.
        let next = Vec::with_capacity(p.buf.len().min(HAND_OVER_AT));
        let buf = std::mem::replace(&mut p.buf, next);
        let frames = std::mem::take(&mut p.frames);
        self.outbox.send(buf, frames).await
    }

    /// Queues an answer executed at once; counts it in flight until it is written.
    fn answer(&self, batch: &mut Batch, op: Option<Opcode>, opcode: u16, id: u32, e: &OpError) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let status = error_frame(&mut batch.pending.buf, opcode, id, e);
        batch.pending.frames += 1;
        self.shared.metrics.record(op, status, batch.read_at);
    }

    /// Answers a frame error (request id 0) before the connection closes.
    pub fn fatal(&self, e: &FrameError, batch: &mut Batch) {
        let err = OpError::new(Status::MalformedField, e.to_string());
        self.answer(batch, None, 0, 0, &err);
    }

    /// Handles one request payload: answered into the batch, or handed to a task that
    /// answers through the writer when it is done.
    pub fn request(&self, payload: &[u8], batch: &mut Batch) {
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
            config: &self.shared.config,
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
            finish(w, r, &self.shared.metrics)
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
        role: Arc<Role>,
        started: Instant,
    ) {
        let shared = Arc::clone(&self.shared);
        let identity = Arc::clone(&self.identity);
        let outbox = self.outbox.clone();
        tokio::spawn(async move {
            let work = tokio::task::spawn_blocking(move || {
                let mut frame = Vec::new();
                let status = respond(&mut frame, opcode, id, |w| {
                    let r = Fields::parse_strict(&body)
                        .map_err(OpError::from)
                        .and_then(|f| {
                            ops::authorise_keys(&role, &f, op)?;
                            ops::admin::execute(&shared, &identity, op, &f, w)
                        });
                    finish(w, r, &shared.metrics)
                });
                shared.metrics.record(Some(op), status, started);
                if status == Status::Ok {
                    tracing::info!(
                        identity = &*identity,
                        operation = op.name(),
                        "key administration"
                    );
                }
                frame
            });
            let frame = match work.await {
                Ok(frame) => frame,
                Err(_) => {
                    let mut frame = Vec::new();
                    let e = OpError::new(Status::Internal, "key administration failed");
                    error_frame(&mut frame, opcode, id, &e);
                    frame
                }
            };
            outbox.send(frame, 1).await;
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
            namer: &shared.card_namer,
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
                    finish(w, r, &self.shared.metrics)
                });
                out.frames += 1;
                shared.metrics.record(Some(op), status, read_at);
            }
            Decided::AfterCommit(pending) => {
                // The answer waits for the commit that covers its decision; the reader
                // goes on meanwhile.
                let shared = Arc::clone(&self.shared);
                let outbox = self.outbox.clone();
                let fields = std::mem::take(&mut out.scratch);
                tokio::spawn(async move {
                    let decided = Decided::AfterCommit(pending).resolved().await;
                    let mut frame = Vec::new();
                    let status = respond(&mut frame, op.code(), id, |w| {
                        w.encoded(&fields);
                        let r = counted::answer(computed, then, decided, w);
                        finish(w, r, &shared.metrics)
                    });
                    shared.metrics.record(Some(op), status, read_at);
                    outbox.send(frame, 1).await;
                });
            }
        }
    }

    /// A counted operation answered without a decision.
    fn counted_now(&self, op: Opcode, id: u32, r: OpResult, read_at: Instant, out: &mut Pending) {
        let fields = &out.scratch;
        let status = respond(&mut out.buf, op.code(), id, |w| {
            w.encoded(fields);
            finish(w, r, &self.shared.metrics)
        });
        out.frames += 1;
        self.shared.metrics.record(Some(op), status, read_at);
    }
}

fn finish(w: &mut FieldsWriter<'_>, r: Result<(), OpError>, metrics: &Metrics) -> Status {
    match r {
        Ok(()) => Status::Ok,
        Err(e) => {
            if let (Status::WeakPin, Some(rule)) = (e.status, e.reason) {
                metrics.weak_pins.with_label_values(&[rule]).inc();
            }
            w.reset();
            e.write(w);
            e.status
        }
    }
}
