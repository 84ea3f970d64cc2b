//! Differential test of dCVV2 against `tests/oracle/dcvv2_reference.py`, an independent
//! implementation written from `protocol/dcvv2.md` with Python's standard library only.
//! Seeded random cases cover both key sizes, every PAN length, counters and time steps,
//! verification windows, and inputs that each break one rule (both sides must refuse).
//!
//! The oracle needs only the standard library, so any Python 3 runs it (see
//! `tests/common/mod.rs`); a missing one fails the test rather than skipping it, unless
//! the run opts out with `COFRE_SKIP_ORACLE=1`, which reports it ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cofre::crypto::dcvv2::{self, Window};
use cofre::crypto::{ClearKey, Error};
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use serde_json::{Value, json};

const SEED: u64 = 0x0DC5_5202;
const CODE_CASES: usize = 600;
const TIME_CASES: usize = 200;
const WINDOW_CASES: usize = 200;
const BROKEN_CASES: usize = 200;

/// Runs the oracle once: every case as one JSON line on stdin, one JSON line back each.
fn oracle(cases: &[Value]) -> Vec<Value> {
    common::run_oracle(&common::oracle_python(&[]), "dcvv2_reference.py", cases)
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn key_hex(rng: &mut StdRng, len: usize) -> String {
    let mut k = vec![0u8; len];
    rng.fill_bytes(&mut k);
    hex::encode(k)
}

/// A valid card: 16- or 32-byte key, 12 to 19 digit PAN, YYMM with month 01-12.
fn card(rng: &mut StdRng) -> (String, String, String) {
    let key_len = if rng.random_bool(0.5) { 16 } else { 32 };
    let key = key_hex(rng, key_len);
    let pan_len = rng.random_range(12..=19);
    let pan = digits(rng, pan_len);
    let expiry = format!("{}{:02}", digits(rng, 2), rng.random_range(1..=12u8));
    (key, pan, expiry)
}

/// Counters near 0, near the top of the range, and anywhere.
fn factor(rng: &mut StdRng) -> u64 {
    match rng.random_range(0..4) {
        0 => rng.random_range(0..1000),
        1 => u64::MAX - rng.random_range(0..1000),
        _ => rng.random(),
    }
}

fn answer(result: Result<Value, Error>) -> Value {
    result.unwrap_or_else(|_| json!({ "error": true }))
}

fn ours_code(key: &str, pan: &str, expiry: &str, factor: u64) -> Value {
    let key = ClearKey::from_hex(key).expect("test key");
    answer(dcvv2::dcvv2(&key, pan, expiry, factor).map(|c| json!({ "code": c.expose_secret() })))
}

#[test]
#[cfg_attr(
    skip_oracle,
    ignore = "COFRE_SKIP_ORACLE=1: differential oracle skipped on request"
)]
fn dcvv2_matches_python_reference() {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut cases = Vec::new();
    let mut ours = Vec::new();

    for _ in 0..CODE_CASES {
        let (key, pan, expiry) = card(&mut rng);
        let f = factor(&mut rng);
        cases.push(json!({"op": "dcvv2", "key": key, "pan": pan, "expiry": expiry, "factor": f}));
        ours.push(ours_code(&key, &pan, &expiry, f));
    }

    for i in 0..TIME_CASES {
        let (key, pan, expiry) = card(&mut rng);
        let t0 = if i % 2 == 0 {
            0
        } else {
            rng.random_range(0..2_000_000_000)
        };
        let unix = t0 + rng.random_range(0..5_000_000_000u64);
        // Mostly the recommended 300 s, sometimes any step from 1 s to a day.
        let step = if i % 3 == 0 {
            300
        } else {
            rng.random_range(1..=86_400)
        };
        let (unix, step) = match i % 20 {
            0 => (unix, 0),                    // refused: zero step
            1 => (t0.saturating_sub(1), step), // refused when t0 > 0: before T0
            _ => (unix, step),
        };
        cases.push(json!({"op": "time_step", "unix": unix, "t0": t0, "step": step}));
        ours.push(answer(
            dcvv2::time_step(unix, t0, step).map(|s| json!({ "step": s })),
        ));
        cases.push(json!({
            "op": "dcvv2_at", "key": key, "pan": pan, "expiry": expiry,
            "unix": unix, "t0": t0, "step": step,
        }));
        ours.push(match dcvv2::time_step(unix, t0, step) {
            Ok(f) => ours_code(&key, &pan, &expiry, f),
            Err(e) => answer(Err(e)),
        });
    }

    for i in 0..WINDOW_CASES {
        let (key, pan, expiry) = card(&mut rng);
        let f = factor(&mut rng);
        let window = Window {
            back: rng.random_range(0..=11),
            forward: rng.random_range(0..=11),
        };
        // Present a code from a step near the factor (inside or just outside the window),
        // or random digits; then the highest match, if any, must agree.
        let presented = if i % 4 == 0 {
            digits(&mut rng, 3)
        } else {
            let near = f.saturating_add_signed(rng.random_range(-12..=12));
            let k = ClearKey::from_hex(&key).expect("test key");
            let code = dcvv2::dcvv2(&k, &pan, &expiry, near).expect("valid card");
            code.expose_secret().to_owned()
        };
        cases.push(json!({
            "op": "verify_window", "key": key, "pan": pan, "expiry": expiry, "factor": f,
            "back": window.back, "forward": window.forward, "presented": presented,
        }));
        let k = ClearKey::from_hex(&key).expect("test key");
        let found = dcvv2::verify_window(&k, &pan, &expiry, f, window, &presented);
        ours.push(answer(found.map(|s| json!({ "step": s }))));
    }

    for i in 0..BROKEN_CASES {
        let (mut key, mut pan, mut expiry) = card(&mut rng);
        match i % 8 {
            0 => key = key_hex(&mut rng, [1, 8, 15, 17, 24, 31, 33, 64][i / 8 % 8]),
            1 => pan = digits(&mut rng, if i % 16 == 1 { 11 } else { 20 }),
            2 => pan.replace_range(i % 12..=i % 12, ["a", " ", "-", "\u{0661}"][i / 8 % 4]),
            3 => expiry = digits(&mut rng, if i % 16 == 3 { 3 } else { 5 }),
            4 => expiry.replace_range(i % 4..=i % 4, ["x", " ", "+", "\u{FF11}"][i / 8 % 4]),
            5 => expiry.replace_range(2.., ["00", "13", "99", "20"][i / 8 % 4]),
            // Unbroken controls among the broken: both sides must still agree.
            _ => {}
        }
        let f = factor(&mut rng);
        cases.push(json!({"op": "dcvv2", "key": key, "pan": pan, "expiry": expiry, "factor": f}));
        ours.push(ours_code(&key, &pan, &expiry, f));
    }

    let theirs = oracle(&cases);
    let (mut errors, mut window_matches) = (0, 0);
    for ((case, ours), theirs) in cases.iter().zip(&ours).zip(&theirs) {
        assert_eq!(ours, theirs, "case {case}");
        errors += usize::from(ours.get("error").is_some());
        window_matches += usize::from(
            ours.get("step").is_some_and(Value::is_u64) && case["op"] == "verify_window",
        );
    }
    assert!(
        window_matches >= WINDOW_CASES / 5,
        "only {window_matches} window matches"
    );
    // The refusal paths were exercised, and the bulk of the cases were not refusals.
    assert!(errors >= BROKEN_CASES / 2, "only {errors} refusals");
    assert!(errors < cases.len() / 4, "{errors} refusals");
}
