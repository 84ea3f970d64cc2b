//! Operations that read or change the counter store: PIN verification and change
//! (lockout), PIN generation (resets), tries query and reset, the brute-force guard,
//! static CVV2 while dCVV2 is on, dCVV2 verification (one use per code, its own
//! lockout), dCVV2 on/off.
//!
//! [`plan`] is synchronous: it resolves the card once, reads its latest state, answers
//! at once when that state settles it (a locked card is answered `pin_locked` before
//! its PIN block is looked at), and otherwise computes the operation's outcome and
//! returns the decision to ask the store for ([`Plan::Decide`]). The store decides in
//! arrival order against the card's latest state (`counters::rules`), and [`answer`]
//! turns its decision and the computed result into the response.

use crate::crypto::pan::Pan;
use crate::protocol::{Fields, FieldsWriter, Opcode, Status, Tag};

use super::super::config::Lockout;
use super::super::counters::{
    self, Attempt, CardNamer, CounterError, CounterStore, Dcvv2Outcome, Decision, Limits,
    PinOutcome, Tries, Verdict,
};
use super::{Ctx, OpError, OpResult, card, pin};

/// What counting needs besides [`Ctx`].
#[derive(Debug)]
pub struct CountCtx<'a> {
    /// The store.
    pub store: &'a dyn CounterStore,
    /// Names cards in the store.
    pub namer: &'a CardNamer,
    /// Limits.
    pub lockout: &'a Lockout,
}

/// How a decision becomes the answer.
#[derive(Debug, Clone, Copy)]
pub enum Then {
    /// The computed result, or the decision's refusal.
    Result,
    /// A counted failure answers `verification_failed` with this message and the tries
    /// after it (PIN tries).
    PinFailure(&'static str),
    /// The same for dCVV2 tries.
    Dcvv2Failure,
    /// `ok` with the PIN tries after the change and this limit.
    Report(u32),
}

/// Answer now, or once the store has decided (and made the decision durable).
#[derive(Debug)]
pub enum Plan {
    /// Nothing to decide.
    Now(OpResult),
    /// Ask the store, then [`answer`].
    Decide {
        /// The decision to ask for.
        request: counters::Request,
        /// What the operation computed (its fields are already written).
        computed: OpResult,
        /// How to answer.
        then: Then,
    },
}

/// Whether an operation goes through this module.
pub fn handles(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::PinVerify
            | Opcode::PinChange
            | Opcode::PinGenerate
            | Opcode::PinRebind
            | Opcode::PinAttempts
            | Opcode::PinAttemptsReset
            | Opcode::GuardReset
            | Opcode::CvvVerify
            | Opcode::Dcvv2Verify
            | Opcode::Dcvv2Enable
            | Opcode::Dcvv2Disable
            | Opcode::Dcvv2State
    )
}

fn unavailable(e: CounterError) -> OpError {
    OpError::new(Status::StoreUnavailable, e.to_string())
}

fn locked() -> OpError {
    OpError::new(Status::PinLocked, "tries exhausted: the card is locked")
}

fn guarded() -> OpError {
    OpError::new(
        Status::BruteForceGuard,
        "PIN verification is suspended by the brute-force guard",
    )
}

fn write_tries(out: &mut FieldsWriter<'_>, t: &Tries, limit: u32) {
    out.u32(Tag::Attempts, t.failures)
        .u32(Tag::Limit, limit)
        .bool(Tag::Locked, t.locked)
        .u64(Tag::LastFailure, t.last_failure);
}

/// Plans one counted operation.
pub fn plan(
    ctx: &Ctx<'_>,
    cc: &CountCtx<'_>,
    op: Opcode,
    f: &Fields<'_>,
    out: &mut FieldsWriter<'_>,
) -> Plan {
    match plan_inner(ctx, cc, op, f, out) {
        Ok(p) => p,
        Err(e) => Plan::Now(Err(e)),
    }
}

fn refuse_if_unwritable(cc: &CountCtx<'_>) -> Result<(), OpError> {
    if cc.store.is_unavailable() {
        return Err(OpError::new(
            Status::StoreUnavailable,
            "the counter store cannot record attempts; verification is refused",
        ));
    }
    Ok(())
}

fn plan_inner(
    ctx: &Ctx<'_>,
    cc: &CountCtx<'_>,
    op: Opcode,
    f: &Fields<'_>,
    out: &mut FieldsWriter<'_>,
) -> Result<Plan, OpError> {
    if op == Opcode::GuardReset {
        f.only(&[])?;
        cc.store.guard().reset();
        return Ok(Plan::Now(Ok(())));
    }
    let (mut pan, _) = card(ctx, f)?;
    if op == Opcode::PinRebind {
        // What is decided about is the new card: its tries start from zero.
        pan = pin::rebind(ctx, f, &pan, out)?;
    }
    let id = cc.namer.name(&pan);
    let limits = Limits {
        pin: cc.lockout.pin_limit_for(pan.digits()),
        dcvv2: cc.lockout.dcvv2_limit,
    };
    let decide = |attempt, computed, then, seen| Plan::Decide {
        request: counters::Request {
            card: id,
            attempt,
            limits,
            now: ctx.now_unix,
            seen,
        },
        computed,
        then,
    };
    match op {
        Opcode::PinVerify | Opcode::PinChange => {
            refuse_if_unwritable(cc)?;
            if cc.store.guard().refusing() {
                return Err(guarded());
            }
            let seen = cc.store.snapshot(&id).map_err(unavailable)?;
            if seen.record.pin.locked {
                return Err(locked());
            }
            let (computed, message) = if op == Opcode::PinVerify {
                (pin::verify(ctx, f, &pan, out), "PIN does not verify")
            } else {
                (pin::change(ctx, f, &pan, out), "old PIN does not verify")
            };
            let outcome = match &computed {
                Ok(()) => PinOutcome::Matched,
                Err(e) if e.status == Status::VerificationFailed => PinOutcome::Mismatched,
                Err(_) => PinOutcome::NotCounted,
            };
            Ok(decide(
                Attempt::Pin(outcome),
                computed,
                Then::PinFailure(message),
                Some(seen),
            ))
        }
        Opcode::PinGenerate => {
            pin::generate(ctx, f, &pan, out)?;
            Ok(decide(Attempt::PinReset, Ok(()), Then::Result, None))
        }
        Opcode::PinRebind => Ok(decide(Attempt::PinReset, Ok(()), Then::Result, None)),
        Opcode::PinAttempts => {
            f.only(&[Tag::Pan, Tag::Token, Tag::TokenVersion])?;
            let seen = cc.store.snapshot(&id).map_err(unavailable)?;
            write_tries(out, &seen.record.pin, limits.pin);
            Ok(Plan::Now(Ok(())))
        }
        Opcode::PinAttemptsReset => {
            f.only(&[Tag::Pan, Tag::Token, Tag::TokenVersion])?;
            Ok(decide(
                Attempt::PinReset,
                Ok(()),
                Then::Report(limits.pin),
                None,
            ))
        }
        Opcode::CvvVerify => {
            if f.str(Tag::ServiceCode)? == Some(crate::crypto::cvv::service_code::CVV2)
                && cc
                    .store
                    .snapshot(&id)
                    .map_err(unavailable)?
                    .record
                    .dcvv2
                    .enabled
            {
                return Err(OpError::new(
                    Status::VerificationFailed,
                    "static CVV2 is refused while dynamic CVV2 is on for this card",
                )
                .with_reason("dcvv2_active"));
            }
            super::card::cvv_verify(ctx, f, &pan, out)?;
            Ok(Plan::Now(Ok(())))
        }
        Opcode::Dcvv2Verify => {
            refuse_if_unwritable(cc)?;
            let seen = cc.store.snapshot(&id).map_err(unavailable)?;
            if seen.record.dcvv2.tries.locked {
                return Err(locked());
            }
            let (computed, outcome) = dcvv2_outcome(ctx, f, &pan, out);
            Ok(decide(
                Attempt::Dcvv2(outcome),
                computed,
                Then::Dcvv2Failure,
                Some(seen),
            ))
        }
        Opcode::Dcvv2Enable | Opcode::Dcvv2Disable => {
            f.only(&[Tag::Pan, Tag::Token, Tag::TokenVersion])?;
            let on = op == Opcode::Dcvv2Enable;
            Ok(decide(Attempt::Dcvv2Enable(on), Ok(()), Then::Result, None))
        }
        Opcode::Dcvv2State => {
            f.only(&[Tag::Pan, Tag::Token, Tag::TokenVersion])?;
            let s = cc.store.snapshot(&id).map_err(unavailable)?.record.dcvv2;
            out.bool(Tag::Dcvv2Enabled, s.enabled);
            write_tries(out, &s.tries, limits.dcvv2);
            Ok(Plan::Now(Ok(())))
        }
        _ => Err(OpError::new(Status::Internal, "not a counted operation")),
    }
}

fn dcvv2_outcome(
    ctx: &Ctx<'_>,
    f: &Fields<'_>,
    pan: &Pan,
    out: &mut FieldsWriter<'_>,
) -> (OpResult, Dcvv2Outcome) {
    match super::card::dcvv2_match(ctx, f, pan) {
        Ok((factor, version)) => {
            out.u64(Tag::MovingFactor, factor)
                .u32(Tag::KeyVersion, version);
            (Ok(()), Dcvv2Outcome::Matched(factor))
        }
        Err(e) if e.status == Status::VerificationFailed => (Err(e), Dcvv2Outcome::Mismatched),
        Err(e) => (Err(e), Dcvv2Outcome::NotCounted),
    }
}

fn failed(message: &str, t: &Tries, what_locks: &str) -> OpError {
    OpError::new(
        Status::VerificationFailed,
        format!(
            "{message}; {} failed tries{}",
            t.failures,
            if t.locked { what_locks } else { "" }
        ),
    )
}

/// The answer to a planned operation once the store has decided. The fields the
/// operation wrote stand only when its computed result does.
pub fn answer(
    computed: OpResult,
    then: Then,
    decided: Result<Decision, CounterError>,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let d = decided.map_err(unavailable)?;
    match (d.verdict, then) {
        (Verdict::Locked, _) => Err(locked()),
        (Verdict::Guarded, _) => Err(guarded()),
        (Verdict::Replayed, _) => Err(OpError::new(
            Status::Replayed,
            "this dCVV2 code (or a later one) was already used",
        )),
        (Verdict::Failed, Then::PinFailure(message)) => {
            Err(failed(message, &d.after.pin, ", card now locked"))
        }
        (Verdict::Failed, Then::Dcvv2Failure) => Err(failed(
            "dCVV2 does not verify",
            &d.after.dcvv2.tries,
            ", dCVV2 now locked",
        )),
        (Verdict::Failed, _) => Err(OpError::new(Status::Internal, "unexpected failure")),
        (Verdict::AsComputed, Then::Report(limit)) => {
            computed?;
            write_tries(out, &d.after.pin, limit);
            Ok(())
        }
        (Verdict::AsComputed, _) => computed,
    }
}
