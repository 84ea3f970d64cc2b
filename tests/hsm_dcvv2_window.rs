//! The dCVV2 verification window at the daemon's edge, at its exact bounds
//! (`protocol/README.md`, field 0x33: "steps each side, 0-10"; `protocol/dcvv2.md`):
//! a window of 10 is the widest accepted and matches a code exactly 10 steps away, 11 is
//! a malformed field; outside the window, a code within 10 steps is `expired` (not
//! counted) and one 11 steps away a plain failure. Counter mode, so no clock is read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use cofre::protocol::Status;
use daemon::Daemon;
use daemon::cards::{Card, by_id, dcvv2_attempts, exchange};

const COUNTER: u64 = 500;

/// A fresh card whose code at `step` differs from its code at every step of
/// `others` (three-digit codes collide about once in a thousand, and a test must not
/// depend on which card it drew).
fn card_with_distinct(step: u64, others: std::ops::RangeInclusive<u64>) -> Card {
    loop {
        let card = Card::fresh();
        let code = card.dcvv2_code(step);
        if others.clone().all(|s| card.dcvv2_code(s) != code) {
            return card;
        }
    }
}

#[test]
fn the_window_is_0_to_10_steps_each_side_and_expired_stops_at_10() {
    let d = Daemon::start("dcvv2-window");
    let mut c = d.connect("issuing-host-1");
    let one = |c: &mut _, card: &Card, window: u8, step: u64| {
        by_id(exchange(
            c,
            &[card.dcvv2_frame(7, COUNTER, window, &card.dcvv2_code(step))],
        ))[0]
    };

    // Window 10: the code of the step exactly 10 back, and 10 ahead, match.
    let card = card_with_distinct(COUNTER - 10, COUNTER - 9..=COUNTER + 10);
    assert_eq!(one(&mut c, &card, 10, COUNTER - 10), Status::Ok);
    let card = card_with_distinct(COUNTER + 10, COUNTER - 10..=COUNTER + 9);
    assert_eq!(one(&mut c, &card, 10, COUNTER + 10), Status::Ok);

    // Window 11 is refused before anything is verified or counted, whatever the code.
    let card = Card::fresh();
    assert_eq!(one(&mut c, &card, 11, COUNTER), Status::MalformedField);
    assert_eq!(one(&mut c, &card, 255, COUNTER), Status::MalformedField);
    assert_eq!(dcvv2_attempts(&mut c, &card.pan), (0, false));

    // Window 0: the step 10 back is `expired` (not counted); 11 back is a failure.
    let card = card_with_distinct(COUNTER - 10, COUNTER - 9..=COUNTER + 10);
    assert_eq!(one(&mut c, &card, 0, COUNTER - 10), Status::Expired);
    assert_eq!(dcvv2_attempts(&mut c, &card.pan), (0, false));
    let card = card_with_distinct(COUNTER - 11, COUNTER - 10..=COUNTER + 10);
    assert_eq!(
        one(&mut c, &card, 0, COUNTER - 11),
        Status::VerificationFailed
    );
    assert_eq!(dcvv2_attempts(&mut c, &card.pan), (1, false));
}
