//! Cards and guesses for the lockout tests: fresh Luhn-valid PANs (never seen by any
//! other test of the run), each with its own PIN and PVV under `pvk.example`, PIN
//! verification and dCVV2 frames, and functions that send a burst and read its answers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};

use cofre::crypto::pan::{Pan, luhn_check_digit};
use cofre::crypto::{ClearKey, Pin, dcvv2, pvv};
use cofre::protocol::{self, Opcode, Status, Tag};

use super::Raw;

/// The example PVK and ZPK (keys-example/README.md).
pub const PVK: &str = "0123456789ABCDEFFEDCBA9876543210";
/// The example dCVV2 key.
pub const DCVV2_KEY: &str = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";

static NEXT_CARD: AtomicU64 = AtomicU64::new(1);

/// A card: PAN, its PIN, its PVV.
#[derive(Debug, Clone)]
pub struct Card {
    pub pan: String,
    pub pin: String,
    pub pvv: String,
}

/// A Luhn-valid 16-digit PAN under BIN 400000 that no other call returns in this run
/// (the process id keeps parallel test binaries apart).
pub fn fresh_pan() -> String {
    let n = NEXT_CARD.fetch_add(1, Ordering::SeqCst);
    let body = format!("400000{:04}{:05}", std::process::id() % 10_000, n % 100_000);
    let check = luhn_check_digit(body.as_bytes()).unwrap();
    format!("{body}{check}")
}

pub fn pvv_of(pan: &str, pin: &str) -> String {
    let pvk = pvv::Pvk::new(&ClearKey::from_hex(PVK).unwrap()).unwrap();
    pvv::visa_pvv(&pvk, 1, &Pin::new(pin).unwrap(), &Pan::new(pan).unwrap())
        .unwrap()
        .to_string()
}

impl Card {
    /// A fresh card whose PIN is derived from its PAN.
    pub fn fresh() -> Self {
        let pan = fresh_pan();
        let digits: u64 = pan[6..15].parse().unwrap();
        let pin = format!("{:04}", digits.wrapping_mul(7919) % 10_000);
        let pvv = pvv_of(&pan, &pin);
        Self { pan, pin, pvv }
    }

    /// `n` distinct wrong PINs and the right one at `right_at` (so `n + 1` guesses).
    /// A wrong PIN whose PVV equals the card's is left out: the PVV has four digits, so
    /// about one PIN in 10,000 verifies although it is not the card's, and a test that
    /// counts failures must not depend on which PINs it drew.
    pub fn guesses(&self, n: usize, right_at: usize) -> Vec<String> {
        let right: u32 = self.pin.parse().unwrap();
        let mut out: Vec<String> = (1..)
            .map(|k| format!("{:04}", (right + k * 37) % 10_000))
            .filter(|p| *p != self.pin && pvv_of(&self.pan, p) != self.pvv)
            .take(n)
            .collect();
        out.insert(right_at.min(n), self.pin.clone());
        out
    }

    /// A pin.verify frame for `pin` with request id `id`.
    pub fn verify_frame(&self, id: u32, pin: &str) -> Vec<u8> {
        let block = super::iso0_block(&self.pan, pin);
        let mut f = Vec::new();
        protocol::encode_request(&mut f, Opcode::PinVerify.code(), id, |w| {
            w.str(Tag::Pan, &self.pan)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &block)
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, &self.pvv);
        })
        .unwrap();
        f
    }

    /// The right dCVV2 code at `counter`.
    pub fn dcvv2_code(&self, counter: u64) -> String {
        let key = ClearKey::from_hex(DCVV2_KEY).unwrap();
        dcvv2::dcvv2(&key, &self.pan, "2812", counter)
            .unwrap()
            .expose_secret()
            .to_owned()
    }

    /// `n` distinct codes that match no step within 10 of `counter` (so each is a plain
    /// failure, never `expired`), then the right one inserted at `right_at`.
    pub fn dcvv2_guesses(&self, counter: u64, n: usize, right_at: usize) -> Vec<String> {
        let near: Vec<String> = (counter.saturating_sub(10)..=counter + 10)
            .map(|c| self.dcvv2_code(c))
            .collect();
        let right = self.dcvv2_code(counter);
        let start: u32 = right.parse().unwrap();
        let mut out: Vec<String> = (1..1000)
            .map(|k| format!("{:03}", (start + k) % 1000))
            .filter(|c| !near.contains(c))
            .take(n)
            .collect();
        out.insert(right_at.min(n), right);
        out
    }

    /// A dcvv2.verify frame for `code` at `counter`, window `window`.
    pub fn dcvv2_frame(&self, id: u32, counter: u64, window: u8, code: &str) -> Vec<u8> {
        let mut f = Vec::new();
        protocol::encode_request(&mut f, Opcode::Dcvv2Verify.code(), id, |w| {
            w.str(Tag::Pan, &self.pan)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, counter)
                .u8(Tag::Window, window)
                .str(Tag::Dcvv2, code);
        })
        .unwrap();
        f
    }
}

/// Sends `frames` in one write and reads one answer per frame: (request id, status),
/// in the order they arrive.
pub fn exchange(c: &mut Raw, frames: &[Vec<u8>]) -> Vec<(u32, Status)> {
    c.send_bytes(&frames.concat());
    (0..frames.len())
        .map(|_| {
            let r = c.read().expect("an answer to every request");
            (r.header.request_id, r.status())
        })
        .collect()
}

/// The statuses of `answers` in request-id order.
pub fn by_id(mut answers: Vec<(u32, Status)>) -> Vec<Status> {
    answers.sort_by_key(|(id, _)| *id);
    answers.into_iter().map(|(_, s)| s).collect()
}

/// How many of `statuses` are `s`.
pub fn count(statuses: &[Status], s: Status) -> usize {
    statuses.iter().filter(|x| **x == s).count()
}

/// A card's PIN tries: (attempts, locked).
pub fn attempts(c: &mut Raw, pan: &str) -> (u32, bool) {
    let r = c.call(Opcode::PinAttempts, |w| {
        w.str(Tag::Pan, pan);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    (
        r.u32(Tag::Attempts),
        r.fields().bool(Tag::Locked).unwrap().unwrap(),
    )
}

/// A card's dCVV2 tries: (attempts, locked).
pub fn dcvv2_attempts(c: &mut Raw, pan: &str) -> (u32, bool) {
    let r = c.call(Opcode::Dcvv2State, |w| {
        w.str(Tag::Pan, pan);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    (
        r.u32(Tag::Attempts),
        r.fields().bool(Tag::Locked).unwrap().unwrap(),
    )
}
