//! The lockout rules: one pure function from a card's latest state, what an operation
//! found, and the limits, to the answer and the card's next state. No clock (the time
//! is an input), no store, no connection: the native protocol, the in-process path and
//! any other listener decide through this one function, and every store applies it.
//!
//! * A locked card is answered `pin_locked` whatever the operation found; a success
//!   never clears a lock (only a reset, `pin.generate` or `pin.attempts.reset`, does).
//! * A failure adds one to the card's count and locks it at exactly the limit.
//! * A success clears the failures counted before it (decisions are made in arrival
//!   order, so it never lowers a count that a later failure raised).
//! * dCVV2: a matching code is accepted once (a code at or below the highest factor
//!   already used is `replayed`); failures have their own count and limit.
//! * While the brute-force guard refuses, every PIN verification is refused, whatever
//!   its PIN block held.

use super::record::{CardRecord, Tries};

/// What `pin.verify` or `pin.change` found in the PIN block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOutcome {
    /// The PIN verifies.
    Matched,
    /// It does not: a failure to count.
    Mismatched,
    /// Another answer (an invalid PIN block, a bad field...): not counted, but still
    /// replaced by `pin_locked` if the card is locked when it is decided.
    NotCounted,
}

/// What `dcvv2.verify` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dcvv2Outcome {
    /// The code matches the time step or counter `factor`.
    Matched(u64),
    /// It matches nothing: a failure to count.
    Mismatched,
    /// Another answer (`expired`, a bad field...): not counted, replaced by
    /// `pin_locked` if dCVV2 is locked.
    NotCounted,
}

/// An event to decide for one card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A PIN verification (`pin.verify`, `pin.change`).
    Pin(PinOutcome),
    /// Clear the PIN tries (`pin.generate`, `pin.attempts.reset`).
    PinReset,
    /// A dCVV2 verification.
    Dcvv2(Dcvv2Outcome),
    /// Turn dCVV2 on (clearing its tries) or off.
    Dcvv2Enable(bool),
}

impl Attempt {
    /// Whether this is a PIN verification (what the brute-force guard watches).
    pub fn is_pin_verification(&self) -> bool {
        matches!(self, Attempt::Pin(_))
    }
}

/// The limits that apply to one card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// PIN failures that lock the card (its BIN range's limit, or the default).
    pub pin: u32,
    /// dCVV2 failures that lock dCVV2 for the card.
    pub dcvv2: u32,
}

/// How the operation is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The operation's own answer stands (`ok`, or its own refusal).
    AsComputed,
    /// `verification_failed`; the failure is counted in the next state.
    Failed,
    /// `pin_locked`: tries exhausted; nothing the operation found is revealed.
    Locked,
    /// `replayed`: the dCVV2 code (or a later one) was already used.
    Replayed,
    /// `brute_force_guard`: PIN verification is suspended.
    Guarded,
}

/// A decision: the answer and the card's state after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// How to answer.
    pub verdict: Verdict,
    /// The card's state after this decision (equal to the state before when nothing
    /// changes).
    pub after: CardRecord,
    /// Whether this decision locked the card's PIN or dCVV2.
    pub locked_now: bool,
}

fn count_failure(t: &mut Tries, limit: u32, now: u64) -> bool {
    t.failures = t.failures.saturating_add(1);
    t.last_failure = now;
    let was = t.locked;
    t.locked |= t.failures >= limit;
    t.locked && !was
}

/// Decides `attempt` against `before`, the card's latest state. `guard_refusing` is
/// whether the brute-force guard refuses PIN verification at this moment.
pub fn decide(
    before: &CardRecord,
    attempt: Attempt,
    limits: Limits,
    guard_refusing: bool,
    now: u64,
) -> Decision {
    let mut after = *before;
    let mut locked_now = false;
    let verdict = match attempt {
        Attempt::Pin(_) if guard_refusing => Verdict::Guarded,
        Attempt::Pin(_) if before.pin.locked => Verdict::Locked,
        Attempt::Pin(PinOutcome::Matched) => {
            after.pin = Tries::default();
            Verdict::AsComputed
        }
        Attempt::Pin(PinOutcome::Mismatched) => {
            locked_now = count_failure(&mut after.pin, limits.pin, now);
            Verdict::Failed
        }
        Attempt::Pin(PinOutcome::NotCounted) => Verdict::AsComputed,
        Attempt::PinReset => {
            after.pin = Tries::default();
            Verdict::AsComputed
        }
        Attempt::Dcvv2(_) if before.dcvv2.tries.locked => Verdict::Locked,
        Attempt::Dcvv2(Dcvv2Outcome::Matched(factor)) => {
            if before.dcvv2.last_used.is_some_and(|used| factor <= used) {
                Verdict::Replayed
            } else {
                after.dcvv2.last_used = Some(factor);
                after.dcvv2.tries = Tries::default();
                Verdict::AsComputed
            }
        }
        Attempt::Dcvv2(Dcvv2Outcome::Mismatched) => {
            locked_now = count_failure(&mut after.dcvv2.tries, limits.dcvv2, now);
            Verdict::Failed
        }
        Attempt::Dcvv2(Dcvv2Outcome::NotCounted) => Verdict::AsComputed,
        Attempt::Dcvv2Enable(on) => {
            after.dcvv2.enabled = on;
            if on {
                after.dcvv2.tries = Tries::default();
            }
            Verdict::AsComputed
        }
    };
    Decision {
        verdict,
        after,
        locked_now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { pin: 3, dcvv2: 2 };

    fn run(start: CardRecord, attempts: &[Attempt]) -> (Vec<Verdict>, CardRecord) {
        let mut state = start;
        let mut verdicts = Vec::new();
        for (i, a) in attempts.iter().enumerate() {
            let d = decide(&state, *a, LIMITS, false, 100 + i as u64);
            verdicts.push(d.verdict);
            state = d.after;
        }
        (verdicts, state)
    }

    use Attempt::{Dcvv2, Dcvv2Enable, Pin, PinReset};
    use PinOutcome::{Matched, Mismatched, NotCounted};
    use Verdict::{AsComputed, Failed, Guarded, Locked, Replayed};

    #[test]
    fn the_lock_holds_at_exactly_the_limit_and_a_success_never_lifts_it() {
        // One earlier failure, then ten wrong PINs and the right one: the case.
        let mut attempts = vec![Pin(Mismatched)];
        attempts.extend([Pin(Mismatched); 10]);
        attempts.push(Pin(Matched));
        let (v, end) = run(CardRecord::default(), &attempts);
        assert_eq!(&v[..3], &[Failed, Failed, Failed]);
        assert!(v[3..].iter().all(|x| *x == Locked), "{v:?}");
        assert_eq!(end.pin.failures, 3);
        assert!(end.pin.locked);
        // Not-counted answers on a locked card are replaced by the lock too.
        assert_eq!(run(end, &[Pin(NotCounted)]).0, [Locked]);
        // Only a reset lifts it.
        let (v, end) = run(end, &[PinReset, Pin(Matched)]);
        assert_eq!(v, [AsComputed, AsComputed]);
        assert_eq!(end, CardRecord::default());
    }

    #[test]
    fn a_success_clears_earlier_failures_and_counts_restart() {
        let (v, end) = run(
            CardRecord::default(),
            &[
                Pin(Mismatched),
                Pin(Mismatched),
                Pin(Matched),
                Pin(Mismatched),
                Pin(NotCounted),
            ],
        );
        assert_eq!(v, [Failed, Failed, AsComputed, Failed, AsComputed]);
        assert_eq!(end.pin.failures, 1);
        assert_eq!(end.pin.last_failure, 103);
        assert!(!end.pin.locked);
    }

    #[test]
    fn locked_now_is_reported_once() {
        let mut s = CardRecord::default();
        let mut locked_now = Vec::new();
        for _ in 0..4 {
            let d = decide(&s, Pin(Mismatched), LIMITS, false, 1);
            locked_now.push(d.locked_now);
            s = d.after;
        }
        assert_eq!(locked_now, [false, false, true, false]);
    }

    #[test]
    fn the_guard_refuses_every_pin_verification_but_not_resets() {
        for outcome in [Matched, Mismatched, NotCounted] {
            let d = decide(&CardRecord::default(), Pin(outcome), LIMITS, true, 1);
            assert_eq!(d.verdict, Guarded);
            assert_eq!(d.after, CardRecord::default(), "nothing counted");
        }
        let d = decide(&CardRecord::default(), PinReset, LIMITS, true, 1);
        assert_eq!(d.verdict, AsComputed);
    }

    #[test]
    fn dcvv2_one_use_per_code_and_its_own_limit() {
        let m = |f| Dcvv2(Dcvv2Outcome::Matched(f));
        let (v, end) = run(
            CardRecord::default(),
            &[
                m(10),
                m(10),
                m(9),
                m(11),
                Dcvv2(Dcvv2Outcome::NotCounted),
                Dcvv2(Dcvv2Outcome::Mismatched),
                m(12),
                Dcvv2(Dcvv2Outcome::Mismatched),
                Dcvv2(Dcvv2Outcome::Mismatched),
                m(13),
                Dcvv2(Dcvv2Outcome::NotCounted),
            ],
        );
        assert_eq!(
            v,
            [
                AsComputed, Replayed, Replayed, AsComputed, AsComputed, Failed, AsComputed, Failed,
                Failed, Locked, Locked
            ]
        );
        assert_eq!(end.dcvv2.last_used, Some(12));
        assert!(end.dcvv2.tries.locked);
        assert_eq!(end.dcvv2.tries.failures, 2);
        assert_eq!(end.pin, Tries::default(), "PIN tries untouched");
        // Enabling clears dCVV2 tries (and lifts its lock); disabling keeps them.
        let (_, off) = run(end, &[Dcvv2Enable(false)]);
        assert!(off.dcvv2.tries.locked && !off.dcvv2.enabled);
        let (v, on) = run(end, &[Dcvv2Enable(true), m(14)]);
        assert_eq!(v, [AsComputed, AsComputed]);
        assert!(on.dcvv2.enabled && !on.dcvv2.tries.locked);
    }

    #[test]
    fn pin_and_dcvv2_locks_are_independent() {
        let mut s = CardRecord::default();
        for _ in 0..3 {
            s = decide(&s, Pin(Mismatched), LIMITS, false, 1).after;
        }
        assert!(s.pin.locked);
        let d = decide(&s, Dcvv2(Dcvv2Outcome::Matched(1)), LIMITS, false, 1);
        assert_eq!(d.verdict, AsComputed);
        let d = decide(&CardRecord::tampered(), Pin(Matched), LIMITS, false, 1);
        assert_eq!(d.verdict, Locked);
        let d = decide(
            &CardRecord::tampered(),
            Dcvv2(Dcvv2Outcome::Matched(1)),
            LIMITS,
            false,
            1,
        );
        assert_eq!(d.verdict, Locked);
    }
}
