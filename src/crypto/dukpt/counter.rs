//! The KSN transaction-counter rules both DUKPT variants share: which counters a receiving
//! host accepts, and which one a device moves to next.

use super::super::{DukptError, Error};

/// Refuses a counter no transaction may carry. Counter 0 is the initial key's own KSN;
/// past `last` the device has used up its keys; more than `max_one_bits` one-bits is a
/// counter a conforming device skips. Exhaustion is checked first, so a counter past
/// `last` (which always also has too many one-bits) is reported as exhausted.
pub(super) fn check(counter: u32, last: u32, max_one_bits: u32) -> Result<(), Error> {
    if counter == 0 {
        return Err(DukptError::CounterZero.into());
    }
    if counter > last {
        return Err(DukptError::CounterExhausted.into());
    }
    if counter.count_ones() > max_one_bits {
        return Err(DukptError::CounterOneBits { max: max_one_bits }.into());
    }
    Ok(())
}

/// The counter a device uses after `counter`: the next larger one with at most
/// `max_one_bits` one-bits, or `None` past `last` (the device must stop).
pub fn next(counter: u32, last: u32, max_one_bits: u32) -> Option<u32> {
    let mut candidate = counter.checked_add(1)?;
    while candidate.count_ones() > max_one_bits {
        // Adding the lowest one-bit clears it with its carry; every value in between
        // keeps all of candidate's one-bits, so none of them can qualify.
        candidate = candidate.checked_add(candidate & candidate.wrapping_neg())?;
    }
    (candidate <= last).then_some(candidate)
}
