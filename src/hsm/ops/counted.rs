//! Operations that read or change the counter store: PIN verification and change
//! (lockout), PIN generation (resets), tries query and reset, the brute-force guard,
//! static CVV2 while dCVV2 is on, dCVV2 verification (one use per code, its own
//! lockout), dCVV2 on/off.
//!
//! Each returns a [`Plan`]: answer now (nothing to write: a locked card, a success on a
//! card with no failures), or commit a [`Change`] first and answer after it is durable.
//! A locked card is answered `pin_locked` before the PIN is looked at.

use crate::crypto::ClearKey;
use crate::protocol::{Fields, FieldsWriter, Opcode, Status, Tag};

use super::super::config::Lockout;
use super::super::counters::{CardId, Change, CounterError, CounterStore, Outcome, Tries};
use super::super::guard::Guard;
use super::{Ctx, OpError, OpResult, card, pin};

/// What counting needs besides [`Ctx`].
#[derive(Debug)]
pub struct CountCtx<'a> {
    /// The store.
    pub store: &'a CounterStore,
    /// Key that names cards in the store.
    pub card_key: &'a ClearKey,
    /// Limits.
    pub lockout: &'a Lockout,
    /// The brute-force guard.
    pub guard: &'a Guard,
}

/// How to answer after a commit.
#[derive(Debug, Clone, Copy)]
pub enum Then {
    /// `ok` with the fields already written.
    Ok,
    /// `verification_failed` with this message, plus the tries after the change.
    Failed(&'static str),
    /// `ok` with the tries after the change.
    Report(u32),
    /// `ok` if the dCVV2 use was fresh, else `replayed`.
    Dcvv2Used,
}

/// Answer now, or after a durable change.
#[derive(Debug)]
pub enum Plan {
    /// Nothing to write.
    Now(OpResult),
    /// Write, then answer.
    Commit(Change, Then),
}

/// Whether an operation goes through this module.
pub fn handles(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::PinVerify
            | Opcode::PinChange
            | Opcode::PinGenerate
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

fn plan_inner(
    ctx: &Ctx<'_>,
    cc: &CountCtx<'_>,
    op: Opcode,
    f: &Fields<'_>,
    out: &mut FieldsWriter<'_>,
) -> Result<Plan, OpError> {
    if op == Opcode::GuardReset {
        f.only(&[])?;
        cc.guard.reset();
        return Ok(Plan::Now(Ok(())));
    }
    let (pan, _) = card(ctx, f)?;
    let id = CardId::new(cc.card_key, &pan);
    let pin_limit = cc.lockout.pin_limit_for(pan.digits());
    let now = ctx.now_unix;
    match op {
        Opcode::PinVerify | Opcode::PinChange => {
            if cc.store.is_unavailable() {
                return Err(OpError::new(
                    Status::StoreUnavailable,
                    "the counter store cannot record attempts; PIN verification is refused",
                ));
            }
            if cc.lockout.guard_refuse && cc.guard.is_tripped() {
                return Err(OpError::new(
                    Status::BruteForceGuard,
                    "PIN verification is suspended by the brute-force guard",
                ));
            }
            let tries = cc.store.pin(&id).map_err(unavailable)?;
            if tries.locked {
                return Err(locked());
            }
            let result = if op == Opcode::PinVerify {
                pin::verify(ctx, f, out)
            } else {
                pin::change(ctx, f, out)
            };
            match result {
                Ok(()) if tries.failures == 0 => Ok(Plan::Now(Ok(()))),
                Ok(()) => Ok(Plan::Commit(Change::PinReset { card: id }, Then::Ok)),
                Err(e) if e.status == Status::VerificationFailed => {
                    if cc
                        .guard
                        .record_failure(now, cc.lockout.guard_failures_per_minute)
                    {
                        tracing::error!(
                            limit = cc.lockout.guard_failures_per_minute,
                            "brute-force guard tripped: PIN failures per minute over the limit"
                        );
                    }
                    out.reset();
                    Ok(Plan::Commit(
                        Change::PinFailure {
                            card: id,
                            limit: pin_limit,
                            now,
                        },
                        Then::Failed("PIN does not verify"),
                    ))
                }
                Err(e) => Err(e),
            }
        }
        Opcode::PinGenerate => {
            let tries = cc.store.pin(&id).map_err(unavailable)?;
            pin::generate(ctx, f, out)?;
            if tries == Tries::default() {
                Ok(Plan::Now(Ok(())))
            } else {
                Ok(Plan::Commit(Change::PinReset { card: id }, Then::Ok))
            }
        }
        Opcode::PinAttempts => {
            f.only(&[Tag::Pan, Tag::Token, Tag::TokenVersion])?;
            let tries = cc.store.pin(&id).map_err(unavailable)?;
            write_tries(out, &tries, pin_limit);
            Ok(Plan::Now(Ok(())))
        }
        Opcode::PinAttemptsReset => {
            f.only(&[Tag::Pan, Tag::Token, Tag::TokenVersion])?;
            Ok(Plan::Commit(
                Change::PinReset { card: id },
                Then::Report(pin_limit),
            ))
        }
        Opcode::CvvVerify => {
            if f.str(Tag::ServiceCode)? == Some(crate::crypto::cvv::service_code::CVV2)
                && cc.store.dcvv2(&id).map_err(unavailable)?.enabled
            {
                return Err(OpError::new(
                    Status::VerificationFailed,
                    "static CVV2 is refused while dynamic CVV2 is on for this card",
                )
                .with_reason("dcvv2_active"));
            }
            super::card::cvv_verify(ctx, f, out)?;
            Ok(Plan::Now(Ok(())))
        }
        Opcode::Dcvv2Verify => {
            if cc.store.is_unavailable() {
                return Err(OpError::new(
                    Status::StoreUnavailable,
                    "the counter store cannot record dCVV2 use; verification is refused",
                ));
            }
            let state = cc.store.dcvv2(&id).map_err(unavailable)?;
            if state.tries.locked {
                return Err(locked());
            }
            match super::card::dcvv2_match(ctx, f) {
                Ok((_, factor, version)) => {
                    out.u64(Tag::MovingFactor, factor)
                        .u32(Tag::KeyVersion, version);
                    Ok(Plan::Commit(
                        Change::Dcvv2Use { card: id, factor },
                        Then::Dcvv2Used,
                    ))
                }
                Err(e) if e.status == Status::VerificationFailed => Ok(Plan::Commit(
                    Change::Dcvv2Failure {
                        card: id,
                        limit: cc.lockout.dcvv2_limit,
                        now,
                    },
                    Then::Failed("dCVV2 does not verify"),
                )),
                Err(e) => Err(e),
            }
        }
        Opcode::Dcvv2Enable | Opcode::Dcvv2Disable => {
            f.only(&[Tag::Pan, Tag::Token, Tag::TokenVersion])?;
            Ok(Plan::Commit(
                Change::Dcvv2Enable {
                    card: id,
                    enabled: op == Opcode::Dcvv2Enable,
                },
                Then::Ok,
            ))
        }
        Opcode::Dcvv2State => {
            f.only(&[Tag::Pan, Tag::Token, Tag::TokenVersion])?;
            let s = cc.store.dcvv2(&id).map_err(unavailable)?;
            out.bool(Tag::Dcvv2Enabled, s.enabled);
            write_tries(out, &s.tries, cc.lockout.dcvv2_limit);
            Ok(Plan::Now(Ok(())))
        }
        _ => Err(OpError::new(Status::Internal, "not a counted operation")),
    }
}

/// Builds the answer once the change is durable (or failed).
pub fn after_commit(
    then: Then,
    result: Result<Outcome, CounterError>,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let outcome = result.map_err(unavailable)?;
    match (then, outcome) {
        (Then::Ok, _) => Ok(()),
        (Then::Failed(message), Outcome::Pin(t)) => Err(OpError::new(
            Status::VerificationFailed,
            format!(
                "{message}; {} failed tries{}",
                t.failures,
                if t.locked { ", card now locked" } else { "" }
            ),
        )),
        (Then::Failed(message), Outcome::Dcvv2(s, _)) => Err(OpError::new(
            Status::VerificationFailed,
            format!(
                "{message}; {} failed tries{}",
                s.tries.failures,
                if s.tries.locked {
                    ", dCVV2 now locked"
                } else {
                    ""
                }
            ),
        )),
        (Then::Report(limit), Outcome::Pin(t)) => {
            write_tries(out, &t, limit);
            Ok(())
        }
        (Then::Dcvv2Used, Outcome::Dcvv2(_, true)) => Ok(()),
        (Then::Dcvv2Used, Outcome::Dcvv2(_, false)) => Err(OpError::new(
            Status::Replayed,
            "this dCVV2 code (or a later one) was already used",
        )),
        _ => Err(OpError::new(Status::Internal, "unexpected counter outcome")),
    }
}
