//! The PIN-try limit through the payShield listener's `EC` and `DC` (the attacks of
//! `tests/hsm_attack.rs` repeated in the payShield dialect): one pipelined write of 250
//! guesses per card, and 16 connections x 250 guesses for one card, with a real daemon,
//! real TLS and an ordinary `atm-switch` certificate. Exactly `limit` guesses are
//! evaluated, the right PIN never verifies after the lock, the card ends locked at the
//! limit (read through the native `pin.attempts`). `EA` (IBM 3624 offset) counts on
//! the same card counter as `EC`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;
mod payshield_common;

use daemon::Daemon;
use daemon::cards::{Card, attempts};
use payshield_common::{Ps, account_card, block, ec_frames, pvv_frames, with_payshield};

#[test]
fn ec_and_dc_guesses_in_one_write_evaluate_exactly_the_limit() {
    let d = Daemon::start_in(with_payshield("ps-lock-one", ""));
    let addr = d.payshield.clone().unwrap();
    for command in ["EC", "DC", "EC"] {
        let card = Card::fresh();
        let guesses = card.guesses(249, 100);
        let mut c = Ps::tls(&addr, "atm-switch-1");
        c.send_all(&pvv_frames(command, &card, &guesses));
        let codes: Vec<String> = (0..guesses.len())
            .map(|_| c.read().unwrap()[6..8].to_owned())
            .collect();
        let count = |code: &str| codes.iter().filter(|c| *c == code).count();
        assert_eq!(count("01"), 3, "{codes:?}");
        assert_eq!(
            count("00"),
            0,
            "the right PIN after the lock never verifies"
        );
        assert_eq!(count("39"), 247);
        assert!(codes[..3].iter().all(|c| c == "01"));
        let mut native = d.connect("issuing-host-1");
        assert_eq!(attempts(&mut native, &account_card(&card)), (3, true));
        // Locked: the right PIN alone answers 39.
        let right = pvv_frames(command, &card, std::slice::from_ref(&card.pin));
        c.send_all(&right);
        assert_eq!(&c.read().unwrap()[6..8], "39");
    }
}

#[test]
fn ec_guesses_from_sixteen_connections_evaluate_exactly_the_limit() {
    let d = Daemon::start_in(with_payshield("ps-lock-many", ""));
    let addr = d.payshield.clone().unwrap();
    for round in 0..2 {
        let card = Card::fresh();
        // Each connection: 249 wrong PINs, the right one after the limit.
        let codes: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|t| {
                    let frames = ec_frames(&card, &card.guesses(249, 3 + t));
                    let addr = addr.clone();
                    s.spawn(move || {
                        let mut c = Ps::tls(&addr, "atm-switch-1");
                        c.send_all(&frames);
                        (0..frames.len())
                            .map(|_| c.read().unwrap()[6..8].to_owned())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let count = |code: &str| codes.iter().filter(|c| *c == code).count();
        assert_eq!(codes.len(), 16 * 250);
        assert_eq!(count("00"), 0, "round {round}");
        assert_eq!(count("01"), 3, "round {round}: exactly the limit evaluated");
        assert_eq!(count("39"), 16 * 250 - 3);
        let mut native = d.connect("issuing-host-1");
        assert_eq!(attempts(&mut native, &account_card(&card)), (3, true));
    }
}

/// `EA` frames for each guess (format 0 under zpk.example), against the offset of the
/// card's PIN under pvk.example (validation data: the account number's 12 digits, `F`).
fn ea_frames(card: &Card, guesses: &[String]) -> Vec<Vec<u8>> {
    use cofre::crypto::pvv::{Ibm3624Params, Pvk, ibm3624_offset};
    let account = &card.pan[card.pan.len() - 13..card.pan.len() - 1];
    let pvk =
        Pvk::new(&cofre::crypto::ClearKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap())
            .unwrap();
    let params = Ibm3624Params::new("0123456789012345", 0, 12, "F").unwrap();
    let offset = ibm3624_offset(
        &pvk,
        &cofre::crypto::Pin::new(&card.pin).unwrap(),
        &cofre::crypto::pan::Pan::new(&account_card(card)).unwrap(),
        &params,
    )
    .unwrap()
    .to_string();
    let (zpk, pvk) = (block("zpk"), block("pvk"));
    guesses
        .iter()
        .enumerate()
        .map(|(i, pin)| {
            let b = hex::encode_upper(daemon::iso0_block(&card.pan, pin));
            format!(
                "{:04}EA{zpk}{pvk}12{b}0104{account}0123456789012345{}N{}{offset:F<12}",
                i % 10_000,
                &account[..7],
                "FFFF"
            )
            .into_bytes()
        })
        .collect()
}

#[test]
fn ea_guesses_in_one_write_evaluate_exactly_the_limit_on_the_ec_counter() {
    let d = Daemon::start_in(with_payshield("ps-lock-ea", ""));
    let addr = d.payshield.clone().unwrap();
    let card = Card::fresh();
    let mut c = Ps::tls(&addr, "atm-switch-1");
    // The right PIN verifies (00).
    c.send_all(&ea_frames(&card, std::slice::from_ref(&card.pin)));
    assert_eq!(&c.read().unwrap()[6..8], "00");
    let guesses = card.guesses(249, 100);
    c.send_all(&ea_frames(&card, &guesses));
    let codes: Vec<String> = (0..guesses.len())
        .map(|_| c.read().unwrap()[6..8].to_owned())
        .collect();
    let count = |code: &str| codes.iter().filter(|c| *c == code).count();
    assert_eq!(count("01"), 3, "{codes:?}");
    assert_eq!(
        count("00"),
        0,
        "the right PIN after the lock never verifies"
    );
    assert_eq!(count("39"), 247);
    let mut native = d.connect("issuing-host-1");
    assert_eq!(attempts(&mut native, &account_card(&card)), (3, true));
    // The same card through EC (the Visa PVV): locked too.
    c.send_all(&ec_frames(&card, std::slice::from_ref(&card.pin)));
    assert_eq!(&c.read().unwrap()[6..8], "39");
}
