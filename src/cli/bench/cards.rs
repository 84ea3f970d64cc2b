//! The realistic workload: many distinct cards (100,000 by default), each with its own
//! PIN, PVV and CVV under the example keys; PIN blocks built per card; a share of the
//! PIN verifications with a wrong PIN (5% by default), drawn per card and visit so they
//! spread over all cards; even cards named by PAN, odd cards by token.
//!
//! Each card belongs to one worker (a connection's window slot, or an in-process task)
//! and is verified by it one request at a time, so the bench knows the order in which
//! the daemon decides each card and predicts every answer: `ok`, `verification_failed`,
//! or `pin_locked` once the card reached its limit. An answer that differs from the
//! prediction is an error; the run reports how many cards it locked.

use std::sync::atomic::{AtomicU8, Ordering};

use rand::RngExt;

use crate::crypto::cipher::BlockCipher;
use crate::crypto::pan::{Pan, luhn_check_digit};
use crate::crypto::pinblock::{self, Format};
use crate::crypto::token::{Alphabet, TokenKey};
use crate::crypto::{Pin, cvv, pvv};
use crate::hsm::config::Lockout;
use crate::protocol::{FieldsWriter, Opcode, Status, Tag, encode_request};

use super::requests::hexkey;

/// The example keys the cards are built under (keys-example/README.md).
const TDES: &str = "0123456789ABCDEFFEDCBA9876543210";
const AES: &str = "00112233445566778899AABBCCDDEEFF";
pub(super) const TOKEN: &str = "2B7E151628AED2A6ABF7158809CF4F3C";

/// What the workload is made of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Workload {
    /// Distinct cards.
    pub cards: usize,
    /// Share of PIN verifications with a wrong PIN, 0 to 1.
    pub wrong_pin_share: f64,
}

/// The kinds of request a card can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// pin.verify, ISO 9564 format 0 under the TDES ZPK.
    Pin0,
    /// pin.verify, format 4 under the AES ZPK.
    Pin4,
    /// cvv.verify with the card's CVV.
    Cvv,
    /// pan.tokenise of the card's PAN.
    Tokenise,
}

/// What the daemon should answer, and whether that answer locks the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// The answer's status.
    pub status: Status,
    /// This failure brings the card to its limit.
    pub locks: bool,
}

impl Expected {
    /// An `ok` answer.
    pub const OK: Self = Self {
        status: Status::Ok,
        locks: false,
    };
}

const LOCKED: u8 = 0x80;

/// The cards, their prebuilt request frames, and what the bench knows of each card's
/// tries.
pub struct Cards {
    workload: Workload,
    kinds: Vec<Kind>,
    /// Per card and kind: the frame (request id 0), and for PIN kinds the wrong-PIN
    /// frame after it.
    frames: Vec<Vec<u8>>,
    per_card: usize,
    /// Failures counted so far, and `LOCKED`.
    tries: Vec<AtomicU8>,
    limits: Vec<u8>,
    seed: u64,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn body(f: impl FnOnce(&mut FieldsWriter<'_>)) -> Vec<u8> {
    let mut b = Vec::new();
    let mut w = FieldsWriter::new(&mut b);
    f(&mut w);
    b
}

fn frame(op: Opcode, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut f = Vec::new();
    encode_request(&mut f, op.code(), 0, |w| {
        w.encoded(body);
    })
    .map_err(|e| e.to_string())?;
    Ok(f)
}

/// The keys the frames are built with.
struct Keys {
    tdes: BlockCipher,
    aes: BlockCipher,
    pvk: pvv::Pvk,
    cvk: cvv::Cvk,
    token: TokenKey,
}

impl Keys {
    fn example() -> Result<Self, String> {
        let e = |e: crate::crypto::Error| e.to_string();
        let raw = |h: &str| hex::decode(h).map_err(|e| e.to_string());
        Ok(Self {
            tdes: BlockCipher::tdes(&raw(TDES)?).map_err(e)?,
            aes: BlockCipher::aes(&raw(AES)?).map_err(e)?,
            pvk: pvv::Pvk::new(&hexkey(TDES)?).map_err(e)?,
            cvk: cvv::Cvk::new(&hexkey(TDES)?).map_err(e)?,
            token: TokenKey::new(&hexkey(TOKEN)?).map_err(e)?,
        })
    }
}

impl Cards {
    /// Builds `workload.cards` fresh cards (a random run number in every PAN keeps them
    /// apart from earlier runs against the same daemon) with the frames of `kinds`.
    pub fn build(workload: Workload, kinds: &[Kind], lockout: &Lockout) -> Result<Self, String> {
        let keys = Keys::example()?;
        let mut rng = rand::rng();
        let run: u32 = rng.random_range(10_000..100_000);
        let seed: u64 = rng.random();
        let e = |e: crate::crypto::Error| e.to_string();
        let per_card: usize = kinds
            .iter()
            .map(|k| {
                if matches!(k, Kind::Pin0 | Kind::Pin4) {
                    2
                } else {
                    1
                }
            })
            .sum();
        let mut frames = Vec::with_capacity(workload.cards * per_card);
        let mut limits = Vec::with_capacity(workload.cards);
        for c in 0..workload.cards {
            let digits = format!("4{run:05}{c:09}");
            let check = luhn_check_digit(digits.as_bytes()).ok_or("luhn")?;
            let pan_text = format!("{digits}{check}");
            let pan = Pan::new(&pan_text).map_err(e)?;
            let pin_n = splitmix(seed ^ c as u64) % 10_000;
            let pin = Pin::new(&format!("{pin_n:04}")).map_err(e)?;
            let pvv = pvv::visa_pvv(&keys.pvk, 1, &pin, &pan)
                .map_err(e)?
                .to_string();
            // A wrong PIN whose PVV differs (one PIN in about 10,000 shares the PVV).
            let mut shift = 1 + c as u64 % 9_000;
            let wrong = loop {
                let p = Pin::new(&format!("{:04}", (pin_n + shift) % 10_000)).map_err(e)?;
                if pvv::visa_pvv(&keys.pvk, 1, &p, &pan)
                    .map_err(e)?
                    .to_string()
                    != pvv
                {
                    break p;
                }
                shift += 1;
            };
            let named = if c % 2 == 0 {
                (Tag::Pan, pan_text.clone())
            } else {
                let token = keys.token.tokenise(&pan, Alphabet::Numeric).map_err(e)?;
                (Tag::Token, token)
            };
            limits.push(u8::try_from(lockout.pin_limit_for(&pan_text)).unwrap_or(u8::MAX));
            for kind in kinds {
                match kind {
                    Kind::Pin0 | Kind::Pin4 => {
                        let (format, cipher, key) = if *kind == Kind::Pin0 {
                            (Format::Iso0, &keys.tdes, "zpk.example")
                        } else {
                            (Format::Iso4, &keys.aes, "zpk.example.aes")
                        };
                        for p in [&pin, &wrong] {
                            let block = pinblock::encipher(format, cipher, p, Some(&pan), &mut rng)
                                .map_err(e)?;
                            frames.push(frame(
                                Opcode::PinVerify,
                                &body(|w| {
                                    w.str(named.0, &named.1)
                                        .str(Tag::Key, key)
                                        .u8(Tag::Format, format.number())
                                        .bytes(Tag::PinBlock, block.as_bytes())
                                        .str(Tag::Pvk, "pvk.example")
                                        .str(Tag::Pvv, &pvv);
                                }),
                            )?);
                        }
                    }
                    Kind::Cvv => {
                        let code = cvv::generate(&keys.cvk, &pan, "2812", "201").map_err(e)?;
                        frames.push(frame(
                            Opcode::CvvVerify,
                            &body(|w| {
                                w.str(named.0, &named.1)
                                    .str(Tag::Key, "cvk.example")
                                    .str(Tag::Expiry, "2812")
                                    .str(Tag::ServiceCode, "201")
                                    .str(Tag::Cvv, &code.expose_secret());
                            }),
                        )?);
                    }
                    Kind::Tokenise => frames.push(frame(
                        Opcode::Tokenise,
                        &body(|w| {
                            w.str(Tag::Pan, &pan_text);
                        }),
                    )?),
                }
            }
        }
        Ok(Self {
            workload,
            kinds: kinds.to_vec(),
            frames,
            per_card,
            tries: (0..workload.cards).map(|_| AtomicU8::new(0)).collect(),
            limits,
            seed,
        })
    }

    /// The card of request `n` of worker `worker` out of `workers`, and which visit of
    /// that card it is. Worker w owns cards w, w + workers, w + 2 workers, ...
    fn card_of(&self, worker: usize, workers: usize, n: u64) -> Result<(usize, u64), String> {
        let cards = self.workload.cards;
        if worker >= cards {
            return Err(format!(
                "{workers} workers need at least as many cards (--cards {cards})"
            ));
        }
        let owned = (cards - worker).div_ceil(workers) as u64;
        Ok((worker + workers * (n % owned) as usize, n / owned))
    }

    /// The frame of request `n` of `worker` for a request of `kind`, and the answer the
    /// daemon must give (recorded as the card's new state).
    pub fn next(
        &self,
        kind: Kind,
        worker: usize,
        workers: usize,
        n: u64,
    ) -> Result<(&[u8], Opcode, Expected), String> {
        let (card, visit) = self.card_of(worker, workers, n)?;
        let mut at = card * self.per_card;
        for k in &self.kinds {
            if *k == kind {
                break;
            }
            at += if matches!(k, Kind::Pin0 | Kind::Pin4) {
                2
            } else {
                1
            };
        }
        let (op, expected, offset) = match kind {
            Kind::Pin0 | Kind::Pin4 => {
                let draw = splitmix(self.seed ^ ((card as u64) << 20) ^ visit.rotate_left(44));
                let unit = (draw >> 11) as f64 / (1u64 << 53) as f64;
                let wrong = unit < self.workload.wrong_pin_share;
                (
                    Opcode::PinVerify,
                    self.predict(card, wrong),
                    usize::from(wrong),
                )
            }
            Kind::Cvv => (Opcode::CvvVerify, Expected::OK, 0),
            Kind::Tokenise => (Opcode::Tokenise, Expected::OK, 0),
        };
        let frame = self.frames.get(at + offset).ok_or("no such frame")?;
        Ok((frame, op, expected))
    }

    /// What the daemon answers the card's next PIN verification, kept as its state
    /// (only the card's owner calls this, one request at a time).
    fn predict(&self, card: usize, wrong: bool) -> Expected {
        let (Some(tries), Some(limit)) = (self.tries.get(card), self.limits.get(card)) else {
            return Expected::OK;
        };
        let t = tries.load(Ordering::Relaxed);
        if t & LOCKED != 0 {
            return Expected {
                status: Status::PinLocked,
                locks: false,
            };
        }
        if !wrong {
            tries.store(0, Ordering::Relaxed);
            return Expected::OK;
        }
        let failures = t + 1;
        let locks = failures >= *limit;
        tries.store(
            if locks { failures | LOCKED } else { failures },
            Ordering::Relaxed,
        );
        Expected {
            status: Status::VerificationFailed,
            locks,
        }
    }

    /// The workload these cards make.
    pub fn workload(&self) -> Workload {
        self.workload
    }
}

/// The body of a prebuilt request frame (what the in-process side executes).
pub fn body_of(frame: &[u8]) -> &[u8] {
    let header = crate::protocol::LENGTH_PREFIX + crate::protocol::REQUEST_HEADER_LEN;
    frame.get(header..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::hsm::HsmConfig;

    fn lockout() -> Lockout {
        let text = include_str!("../../../keys-example/hsm.toml");
        HsmConfig::parse(text, std::path::Path::new("/x"))
            .unwrap()
            .lockout
    }

    #[test]
    fn each_card_belongs_to_one_worker_and_wrong_pins_spread() {
        let w = Workload {
            cards: 1000,
            wrong_pin_share: 0.05,
        };
        let cards = Cards::build(w, &[Kind::Pin0], &lockout()).unwrap();
        let workers = 7;
        let mut owner = vec![None; 1000];
        let mut wrong = 0;
        let mut total = 0;
        for worker in 0..workers {
            for n in 0..2000u64 {
                let (card, _) = cards.card_of(worker, workers, n).unwrap();
                assert_eq!(*owner[card].get_or_insert(worker), worker);
                let (_, op, e) = cards.next(Kind::Pin0, worker, workers, n).unwrap();
                assert_eq!(op, Opcode::PinVerify);
                total += 1;
                if e.status != Status::Ok {
                    wrong += 1;
                }
            }
        }
        assert!(owner.iter().all(Option::is_some), "every card is used");
        // Wrong PINs (and the locks they cause) are about 5%, not 0 and not all.
        let share = wrong as f64 / total as f64;
        assert!((0.03..0.12).contains(&share), "{share}");
        assert!(cards.card_of(1000, 1001, 0).is_err());
    }

    #[test]
    fn predictions_lock_at_the_limit_and_a_success_clears_failures() {
        let w = Workload {
            cards: 4,
            wrong_pin_share: 0.0,
        };
        let cards = Cards::build(w, &[Kind::Pin0, Kind::Cvv], &lockout()).unwrap();
        let seq: Vec<Expected> = [true, true, false, true, true, true, false]
            .iter()
            .map(|wrong| cards.predict(2, *wrong))
            .collect();
        let statuses: Vec<Status> = seq.iter().map(|e| e.status).collect();
        use Status::{Ok, PinLocked, VerificationFailed as F};
        assert_eq!(statuses, [F, F, Ok, F, F, F, PinLocked]);
        assert_eq!(seq.iter().filter(|e| e.locks).count(), 1);
        assert!(seq[5].locks);
        // The frames: the right and wrong PIN blocks of a card differ, CVV follows.
        let (right, _, _) = cards.next(Kind::Pin0, 0, 4, 0).unwrap();
        let (cvv_frame, op, _) = cards.next(Kind::Cvv, 0, 4, 0).unwrap();
        assert_ne!(right, cvv_frame);
        assert_eq!(op, Opcode::CvvVerify);
    }
}
