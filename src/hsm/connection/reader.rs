//! The request side of one connection: each complete request of a read is admitted
//! and dispatched ([`crate::hsm::dispatch`]) in turn, its answer appended to the batch's
//! buffer, which goes to the writer in one piece. Only I/O lives here: requests that
//! must wait (key administration on a blocking thread, a counted decision until its
//! commit) answer through the outbox when they are done, so later fast requests
//! overtake them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::super::counters::Decided;
use super::super::dispatch::{self, Dispatched, FRAME_ERROR};
use super::super::keyring::KeyRing;
use super::super::ops::admin::{self, AdminRequest};
use super::super::ops::counted::{self, Then};
use super::super::ops::{Ctx, OpError, OpResult};
use super::super::policy::Policy;
use super::super::state::Shared;
use super::outbox::Outbox;
use crate::protocol::{FieldsWriter, FrameError, Opcode, Status, encode_response_with};

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
    /// The fields of the request being answered, before its frame is written.
    scratch: Vec<u8>,
}

/// Appends one answer frame to `buf`: the fields in `fields` if `result` is `Ok`, the
/// error's otherwise. An answer that cannot be encoded becomes an `internal` answer.
pub fn respond(buf: &mut Vec<u8>, opcode: u16, id: u32, fields: &[u8], result: OpResult) -> Status {
    let start = buf.len();
    let written = encode_response_with(buf, opcode, id, |w| match result {
        Ok(()) => {
            w.encoded_unchecked(fields);
            Status::Ok
        }
        Err(e) => {
            e.write(w);
            e.status
        }
    });
    match written {
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
    fn answer(&self, batch: &mut Batch, op: Option<Opcode>, opcode: u16, id: u32, e: OpError) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let m = &self.shared.metrics;
        let status = respond(&mut batch.pending.buf, opcode, id, &[], Err(e));
        batch.pending.frames += 1;
        m.record(op, status, batch.read_at);
    }

    /// Answers a frame error (request id 0, reason `frame_error`) before the connection
    /// closes.
    pub fn fatal(&self, e: &FrameError, batch: &mut Batch) {
        let err = OpError::new(Status::MalformedField, e.to_string()).with_reason(FRAME_ERROR);
        self.answer(batch, None, 0, 0, err);
    }

    /// Handles one request payload: answered into the batch, or handed to a task that
    /// answers through the writer when it is done.
    pub fn request(&self, payload: &[u8], batch: &mut Batch) {
        let full =
            self.in_flight.load(Ordering::Acquire) >= self.shared.config.limits.max_in_flight;
        let a = match dispatch::admit(&batch.policy, &self.identity, payload, full) {
            Ok(a) => a,
            Err(r) => return self.answer(batch, r.op, r.opcode, r.id, r.error),
        };
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let (op, id) = (a.op, a.id);
        let shared = &*self.shared;
        let ctx = Ctx {
            ring: &batch.ring,
            secrets: &shared.secrets,
            config: &shared.config,
            store: shared.counters.as_ref(),
            namer: &shared.card_namer,
            metrics: &shared.metrics,
            role: a.role,
            now_unix: batch.now_unix,
            uptime: batch.uptime,
        };
        let out = &mut batch.pending;
        out.scratch.clear();
        let mut w = FieldsWriter::new(&mut out.scratch);
        let mut d = dispatch::dispatch(&ctx, op, a.body, &mut w);
        if w.finish().is_err() {
            d = Dispatched::Answered(Err(OpError::new(
                Status::Internal,
                "response could not be encoded",
            )));
        }
        match d {
            Dispatched::Answered(r) => self.now(op, id, r, batch.read_at, out),
            Dispatched::Commit {
                request,
                computed,
                then,
            } => match shared.counters.decide(request) {
                Decided::Now(decided) => {
                    let r = answer_decided(computed, then, decided, &mut out.scratch);
                    self.now(op, id, r, batch.read_at, out);
                }
                Decided::AfterCommit(pending) => {
                    let fields = std::mem::take(&mut out.scratch);
                    self.after_commit(op, id, pending, computed, then, fields, batch.read_at);
                }
            },
            Dispatched::Admin(req) => self.admin(op, id, req, batch.read_at),
        }
    }

    /// An answer ready now, into the batch.
    fn now(&self, op: Opcode, id: u32, r: OpResult, read_at: Instant, out: &mut Pending) {
        let m = &self.shared.metrics;
        let status = respond(&mut out.buf, op.code(), id, &out.scratch, r);
        out.frames += 1;
        m.record(Some(op), status, read_at);
    }

    /// A counted answer that waits for the commit covering its decision; the reader
    /// goes on meanwhile.
    #[allow(clippy::too_many_arguments)]
    fn after_commit(
        &self,
        op: Opcode,
        id: u32,
        pending: tokio::sync::oneshot::Receiver<
            Result<super::super::counters::Decision, super::super::counters::CounterError>,
        >,
        computed: OpResult,
        then: Then,
        mut fields: Vec<u8>,
        read_at: Instant,
    ) {
        let shared = Arc::clone(&self.shared);
        let outbox = self.outbox.clone();
        tokio::spawn(async move {
            let decided = Decided::AfterCommit(pending).resolved().await;
            let r = answer_decided(computed, then, decided, &mut fields);
            let mut frame = Vec::new();
            let status = respond(&mut frame, op.code(), id, &fields, r);
            shared.metrics.record(Some(op), status, read_at);
            outbox.send(frame, 1).await;
        });
    }

    /// Key administration writes files with fsync: on a blocking thread.
    fn admin(&self, op: Opcode, id: u32, req: AdminRequest, started: Instant) {
        let shared = Arc::clone(&self.shared);
        let identity = Arc::clone(&self.identity);
        let outbox = self.outbox.clone();
        tokio::spawn(async move {
            let work = tokio::task::spawn_blocking(move || {
                let mut fields = Vec::new();
                let r = admin::execute(
                    &shared,
                    &identity,
                    &req,
                    &mut FieldsWriter::new(&mut fields),
                );
                let mut frame = Vec::new();
                let status = respond(&mut frame, op.code(), id, &fields, r);
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
                    respond(&mut frame, op.code(), id, &[], Err(e));
                    frame
                }
            };
            outbox.send(frame, 1).await;
        });
    }
}

/// A counted operation's answer once the store has decided: the fields it computed,
/// then whatever the decision adds (the tries of pin.attempts.reset).
fn answer_decided(
    computed: OpResult,
    then: Then,
    decided: Result<super::super::counters::Decision, super::super::counters::CounterError>,
    fields: &mut Vec<u8>,
) -> OpResult {
    let mut w = FieldsWriter::new(fields);
    let r = counted::answer(computed, then, decided, &mut w);
    match w.finish() {
        Ok(()) => r,
        Err(_) => Err(OpError::new(
            Status::Internal,
            "response could not be encoded",
        )),
    }
}
