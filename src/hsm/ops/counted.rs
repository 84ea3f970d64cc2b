//! Operations that read or change the counter store: PIN verification and change
//! (lockout), PIN generation and rebinding (resets), tries query and reset, the
//! brute-force guard, static CVV2 while dCVV2 is on, dCVV2 verification (one use per
//! code, its own lockout), dCVV2 on/off.
//!
//! Each plan is synchronous: it takes the card resolved once, reads its latest state,
//! answers at once when that state settles it (a locked card is answered `pin_locked`
//! before its PIN block is looked at), and otherwise computes the operation's outcome
//! and returns the decision to ask the store for ([`Plan::Decide`]). The store decides
//! in arrival order against the card's latest state (`counters::rules`), and [`answer`]
//! turns its decision and the computed result into the response.

use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::super::counters::{
    self, Attempt, CardId, CounterError, Dcvv2Outcome, Decision, Limits, PinOutcome, Snapshot,
    Tries, Verdict,
};
use super::codes::CvvVerify;
use super::dcvv2::Dcvv2Verify;
use super::pin::{PinChange, PinVerify};
use super::pin_issue::{PinGenerate, PinRebind};
use super::{CARD, Card, CardRef, Ctx, OpError, OpResult, Request, codes, dcvv2, pin, pin_issue};

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

/// A request that names only a card (pin.attempts, pin.attempts.reset, dcvv2.enable,
/// dcvv2.disable, dcvv2.state).
#[derive(Debug, Clone)]
pub struct CardOnly<'a>(pub CardRef<'a>);

impl<'a> Request<'a> for CardOnly<'a> {
    const TAGS: &'static [Tag] = &CARD;
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        Ok(Self(CardRef::parse(f, CARD)?))
    }
}

/// pin.guard.reset (0x0027): no fields.
#[derive(Debug)]
pub struct GuardReset;

impl Request<'_> for GuardReset {
    const TAGS: &'static [Tag] = &[];
    fn parse(_: &Fields<'_>) -> Result<Self, OpError> {
        Ok(GuardReset)
    }
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

fn refuse_if_unwritable(ctx: &Ctx<'_>) -> Result<(), OpError> {
    if ctx.store.is_unavailable() {
        return Err(OpError::new(
            Status::StoreUnavailable,
            "the counter store cannot record attempts; verification is refused",
        ));
    }
    Ok(())
}

fn write_tries(out: &mut FieldsWriter<'_>, t: &Tries, limit: u32) {
    out.u32(Tag::Attempts, t.failures)
        .u32(Tag::Limit, limit)
        .bool(Tag::Locked, t.locked)
        .u64(Tag::LastFailure, t.last_failure);
}

/// The card's name in the store and its limits.
fn counted_card(ctx: &Ctx<'_>, card: &Card) -> (CardId, Limits) {
    let lockout = &ctx.config.lockout;
    (
        ctx.namer.name(&card.pan),
        Limits {
            pin: lockout.pin_limit_for(card.pan.digits()),
            dcvv2: lockout.dcvv2_limit,
        },
    )
}

fn decide(
    ctx: &Ctx<'_>,
    card: &Card,
    attempt: Attempt,
    computed: OpResult,
    then: Then,
    seen: Option<Snapshot>,
) -> Plan {
    let (id, limits) = counted_card(ctx, card);
    Plan::Decide {
        request: counters::Request {
            card: id,
            attempt,
            limits,
            now: ctx.now_unix,
            seen,
        },
        computed,
        then,
    }
}

/// The card's latest state for a PIN verification, refusing early: an unwritable
/// store, a refusing guard, a locked card.
fn before_pin_verification(ctx: &Ctx<'_>, card: &Card) -> Result<Option<Snapshot>, OpError> {
    refuse_if_unwritable(ctx)?;
    if ctx.store.guard().refusing() {
        return Err(guarded());
    }
    let seen = ctx
        .store
        .verification_hint(&counted_card(ctx, card).0)
        .map_err(unavailable)?;
    if seen.is_some_and(|s| s.record.pin.locked) {
        return Err(locked());
    }
    Ok(seen)
}

fn pin_outcome(computed: &OpResult) -> PinOutcome {
    match computed {
        Ok(()) => PinOutcome::Matched,
        Err(e) if e.status == Status::VerificationFailed => PinOutcome::Mismatched,
        Err(_) => PinOutcome::NotCounted,
    }
}

/// pin.verify.
pub fn pin_verify(
    ctx: &Ctx<'_>,
    r: &PinVerify<'_>,
    out: &mut FieldsWriter<'_>,
) -> Result<Plan, OpError> {
    let card = Card::resolve(ctx, &r.card)?;
    let seen = before_pin_verification(ctx, &card)?;
    let computed = pin::verify(ctx, r, &card, out);
    let attempt = Attempt::Pin(pin_outcome(&computed));
    let then = Then::PinFailure("PIN does not verify");
    Ok(decide(ctx, &card, attempt, computed, then, seen))
}

/// pin.change: counted as a verification of the old PIN (a weak new PIN is not counted).
pub fn pin_change(
    ctx: &Ctx<'_>,
    r: &PinChange<'_>,
    out: &mut FieldsWriter<'_>,
) -> Result<Plan, OpError> {
    let card = Card::resolve(ctx, &r.verify.card)?;
    let seen = before_pin_verification(ctx, &card)?;
    let computed = pin::change(ctx, r, &card, out);
    let attempt = Attempt::Pin(pin_outcome(&computed));
    let then = Then::PinFailure("old PIN does not verify");
    Ok(decide(ctx, &card, attempt, computed, then, seen))
}

/// pin.generate: a new PIN clears the card's tries.
pub fn pin_generate(
    ctx: &Ctx<'_>,
    r: &PinGenerate<'_>,
    out: &mut FieldsWriter<'_>,
) -> Result<Plan, OpError> {
    let card = Card::resolve(ctx, &r.card)?;
    pin_issue::generate(ctx, r, &card, out)?;
    Ok(decide(
        ctx,
        &card,
        Attempt::PinReset,
        Ok(()),
        Then::Result,
        None,
    ))
}

/// pin.rebind: the new card's tries start from zero.
pub fn pin_rebind(
    ctx: &Ctx<'_>,
    r: &PinRebind<'_>,
    out: &mut FieldsWriter<'_>,
) -> Result<Plan, OpError> {
    let old = Card::resolve(ctx, &r.card)?;
    let new = Card::resolve(ctx, &r.new_card)?;
    pin_issue::rebind(ctx, r, &old, &new, out)?;
    Ok(decide(
        ctx,
        &new,
        Attempt::PinReset,
        Ok(()),
        Then::Result,
        None,
    ))
}

/// pin.attempts: the latest state, decided changes included.
pub fn pin_attempts(
    ctx: &Ctx<'_>,
    r: &CardOnly<'_>,
    out: &mut FieldsWriter<'_>,
) -> Result<Plan, OpError> {
    let card = Card::resolve(ctx, &r.0)?;
    let (id, limits) = counted_card(ctx, &card);
    let seen = ctx.store.snapshot(&id).map_err(unavailable)?;
    write_tries(out, &seen.record.pin, limits.pin);
    card.write_version(Tag::TokenVersion, out);
    Ok(Plan::Now(Ok(())))
}

/// pin.attempts.reset.
pub fn pin_attempts_reset(
    ctx: &Ctx<'_>,
    r: &CardOnly<'_>,
    out: &mut FieldsWriter<'_>,
) -> Result<Plan, OpError> {
    let card = Card::resolve(ctx, &r.0)?;
    card.write_version(Tag::TokenVersion, out);
    let limit = counted_card(ctx, &card).1.pin;
    Ok(decide(
        ctx,
        &card,
        Attempt::PinReset,
        Ok(()),
        Then::Report(limit),
        None,
    ))
}

/// pin.guard.reset.
pub fn guard_reset(ctx: &Ctx<'_>, _: &GuardReset) -> Result<Plan, OpError> {
    ctx.store.guard().reset();
    Ok(Plan::Now(Ok(())))
}

/// cvv.verify: a static CVV2 is refused while dCVV2 is on for the card.
pub fn cvv_verify(
    ctx: &Ctx<'_>,
    r: &CvvVerify<'_>,
    out: &mut FieldsWriter<'_>,
) -> Result<Plan, OpError> {
    let card = Card::resolve(ctx, &r.codes.card)?;
    if r.is_static_cvv2() {
        let id = counted_card(ctx, &card).0;
        let state = ctx.store.snapshot(&id).map_err(unavailable)?.record.dcvv2;
        if state.enabled {
            return Err(OpError::new(
                Status::VerificationFailed,
                "static CVV2 is refused while dynamic CVV2 is on for this card",
            )
            .with_reason("dcvv2_active"));
        }
    }
    Ok(Plan::Now(codes::cvv_verify(ctx, r, &card, out)))
}

/// dcvv2.verify: one use per code, its own tries.
pub fn dcvv2_verify(
    ctx: &Ctx<'_>,
    r: &Dcvv2Verify<'_>,
    out: &mut FieldsWriter<'_>,
) -> Result<Plan, OpError> {
    let card = Card::resolve(ctx, &r.card)?;
    refuse_if_unwritable(ctx)?;
    let seen = ctx
        .store
        .verification_hint(&counted_card(ctx, &card).0)
        .map_err(unavailable)?;
    if seen.is_some_and(|s| s.record.dcvv2.tries.locked) {
        return Err(locked());
    }
    let (computed, outcome) = match dcvv2::matched(ctx, r, &card) {
        Ok((factor, version)) => {
            out.u64(Tag::MovingFactor, factor)
                .u32(Tag::KeyVersion, version);
            card.write_version(Tag::TokenVersion, out);
            (Ok(()), Dcvv2Outcome::Matched(factor))
        }
        Err(e) if e.status == Status::VerificationFailed => (Err(e), Dcvv2Outcome::Mismatched),
        Err(e) => (Err(e), Dcvv2Outcome::NotCounted),
    };
    let attempt = Attempt::Dcvv2(outcome);
    Ok(decide(
        ctx,
        &card,
        attempt,
        computed,
        Then::Dcvv2Failure,
        seen,
    ))
}

/// dcvv2.enable (`on`) or dcvv2.disable.
pub fn dcvv2_set(
    ctx: &Ctx<'_>,
    r: &CardOnly<'_>,
    on: bool,
    out: &mut FieldsWriter<'_>,
) -> Result<Plan, OpError> {
    let card = Card::resolve(ctx, &r.0)?;
    card.write_version(Tag::TokenVersion, out);
    Ok(decide(
        ctx,
        &card,
        Attempt::Dcvv2Enable(on),
        Ok(()),
        Then::Result,
        None,
    ))
}

/// dcvv2.state.
pub fn dcvv2_state(
    ctx: &Ctx<'_>,
    r: &CardOnly<'_>,
    out: &mut FieldsWriter<'_>,
) -> Result<Plan, OpError> {
    let card = Card::resolve(ctx, &r.0)?;
    let (id, limits) = counted_card(ctx, &card);
    let s = ctx.store.snapshot(&id).map_err(unavailable)?.record.dcvv2;
    out.bool(Tag::Dcvv2Enabled, s.enabled);
    write_tries(out, &s.tries, limits.dcvv2);
    card.write_version(Tag::TokenVersion, out);
    Ok(Plan::Now(Ok(())))
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
