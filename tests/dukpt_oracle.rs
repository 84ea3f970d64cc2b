//! Differential tests of DUKPT against independent implementations, over seeded random
//! BDKs, KSNs, counters, key types, PINs and PANs:
//!
//! * TDES DUKPT against pydukpt (PyPI, pinned in `tests/oracle/requirements.txt`) through
//!   `tests/oracle/dukpt_tdes.py`: initial key, transaction key and all five working keys;
//!   PIN blocks of formats 0, 1 and 3 enciphered on one side and deciphered on the other,
//!   both ways (format 3 via psec).
//! * AES DUKPT against `tests/oracle/dukpt_aes_reference.py`, a reference written in
//!   Python from the text of ANSI X9.24-3-2017 (no installable package implements AES
//!   DUKPT): initial, transaction and working keys of every usage and type, the refusals
//!   (counter rules, working keys stronger than the BDK), and PIN blocks both ways
//!   (format 4 via psec; formats 0, 1, 3 under 2TDEA/3TDEA PIN keys).
//!
//! A missing oracle fails these tests; `COFRE_SKIP_ORACLE=1` reports them ignored (see
//! `tests/common/mod.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cofre::crypto::cipher::Algorithm;
use cofre::crypto::dukpt::aes::{self, KeyUsage};
use cofre::crypto::dukpt::tdes::{self, Variant};
use cofre::crypto::dukpt::{self, Bdk, KeyType, Ksn};
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{Format, PinBlock};
use cofre::crypto::{ClearKey, Pin};
use rand::rngs::StdRng;
use rand::{Rng, RngExt};
use serde_json::{Value, json};

const KEY_CASES: usize = 300;
const PIN_CASES: usize = 200;
const REFUSAL_CASES: usize = 60;

fn rand_hex(rng: &mut StdRng, bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rng.fill_bytes(&mut b);
    hex::encode_upper(b)
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// A counter a device may send: 1 to `max_ones` one-bits among the low `bits` bits.
fn valid_counter(rng: &mut StdRng, bits: u32, max_ones: u32) -> u32 {
    let ones = rng.random_range(1..=max_ones);
    let mut counter = 0u32;
    while counter.count_ones() < ones {
        counter |= 1 << rng.random_range(0..bits);
    }
    counter
}

fn tdes_ksn(rng: &mut StdRng) -> tdes::Ksn {
    let counter = match rng.random_range(0..20) {
        0 => 1,
        1 => tdes::LAST_COUNTER,
        _ => valid_counter(rng, tdes::COUNTER_BITS, tdes::MAX_ONE_BITS),
    };
    tdes::Ksn::from_hex(&rand_hex(rng, 10))
        .unwrap()
        .with_counter(counter)
        .unwrap()
}

fn aes_ksn(rng: &mut StdRng) -> aes::Ksn {
    let counter = match rng.random_range(0..20) {
        0 => 1,
        1 => aes::LAST_COUNTER,
        _ => valid_counter(rng, 32, aes::MAX_ONE_BITS),
    };
    aes::Ksn::from_hex(&rand_hex(rng, 12))
        .unwrap()
        .with_counter(counter)
}

fn key_type_name(t: KeyType) -> &'static str {
    t.name()
}

fn usage_name(u: KeyUsage) -> &'static str {
    match u {
        KeyUsage::KeyEncryption => "key-encryption",
        KeyUsage::PinEncryption => "pin",
        KeyUsage::MacGeneration => "mac-generate",
        KeyUsage::MacVerification => "mac-verify",
        KeyUsage::MacBothWays => "mac-both",
        KeyUsage::DataEncrypt => "data-encrypt",
        KeyUsage::DataDecrypt => "data-decrypt",
        KeyUsage::DataBothWays => "data-both",
    }
}

fn hex_of(key: &ClearKey) -> String {
    hex::encode_upper(key.expose_secret())
}

/// Runs the oracle and compares answer by answer.
fn compare(modules: &[&str], script: &str, cases: Vec<(Value, Value)>) {
    let python = common::oracle_python(modules);
    let (inputs, ours): (Vec<Value>, Vec<Value>) = cases.into_iter().unzip();
    let theirs = common::run_oracle(&python, script, &inputs);
    for ((input, mine), theirs) in inputs.iter().zip(&ours).zip(&theirs) {
        assert_eq!(mine, theirs, "case {input}");
    }
}

#[test]
#[cfg_attr(
    skip_oracle,
    ignore = "COFRE_SKIP_ORACLE=1: differential oracle skipped on request"
)]
fn tdes_keys_match_pydukpt() {
    let mut rng = common::test_rng(0xD0_0001);
    let cases = (0..KEY_CASES)
        .map(|_| {
            let bdk_hex = rand_hex(&mut rng, 16);
            let ksn = tdes_ksn(&mut rng);
            let ipek = tdes::Bdk::new(&ClearKey::from_hex(&bdk_hex).unwrap())
                .unwrap()
                .initial_key(&ksn);
            let tk = ipek.transaction_key(&ksn).unwrap();
            let ours = json!({
                "ipek": hex_of(ipek.key()),
                "key": hex_of(tk.key()),
                "pin": hex_of(&tk.working_key(Variant::Pin)),
                "mac_request": hex_of(&tk.working_key(Variant::MacRequest)),
                "mac_response": hex_of(&tk.working_key(Variant::MacResponse)),
                "data_request": hex_of(&tk.working_key(Variant::DataRequest)),
                "data_response": hex_of(&tk.working_key(Variant::DataResponse)),
            });
            (
                json!({"op": "keys", "bdk": bdk_hex, "ksn": ksn.to_string()}),
                ours,
            )
        })
        .collect();
    compare(&["pydukpt", "psec"], "dukpt_tdes.py", cases);
}

/// PIN block cases split in two halves: blocks cofre enciphers for the oracle to
/// decipher, and PINs the oracle enciphers for cofre to decipher.
#[derive(Default)]
struct PinCases {
    ours: Vec<(Value, Value)>,
    theirs: Vec<(Value, Bdk, Ksn, KeyType)>,
}

impl PinCases {
    /// Adds one case: a random PIN, PAN (13-19 digits, psec's range) and format among
    /// `formats`, alternating which side enciphers. `key_type` picks the PIN key type for
    /// the format drawn.
    fn add(
        &mut self,
        rng: &mut StdRng,
        (bdk_hex, bdk, ksn): (String, Bdk, Ksn),
        formats: &[u8],
        key_type: impl Fn(&mut StdRng, u8) -> KeyType,
    ) {
        let pin_len = rng.random_range(4..=12);
        let pan_len = rng.random_range(13..=19);
        let (pin, pan) = (digits(rng, pin_len), digits(rng, pan_len));
        let format = formats[rng.random_range(0..formats.len())];
        let key_type = key_type(rng, format);
        let mut case = json!({"bdk": bdk_hex, "ksn": ksn.to_string(), "format": format,
            "pan": pan, "key_type": key_type.name()});
        if (self.ours.len() + self.theirs.len()).is_multiple_of(2) {
            let block = dukpt::encipher_pin(
                &bdk,
                &ksn,
                key_type,
                Format::from_number(format).unwrap(),
                &Pin::new(&pin).unwrap(),
                Some(&Pan::new(&pan).unwrap()),
                rng,
            )
            .unwrap();
            case["op"] = json!("pin_decipher");
            case["block"] = json!(block.to_hex());
            self.ours.push((case, json!({ "pin": pin })));
        } else {
            case["op"] = json!("pin_encipher");
            case["pin"] = json!(pin);
            self.theirs.push((case, bdk, ksn, key_type));
        }
    }

    /// Both halves against the oracle: it deciphers cofre's blocks to their PINs, and
    /// cofre deciphers its blocks to theirs.
    fn check(self, modules: &[&str], script: &str) {
        compare(modules, script, self.ours);
        let python = common::oracle_python(modules);
        let inputs: Vec<Value> = self.theirs.iter().map(|t| t.0.clone()).collect();
        let blocks = common::run_oracle(&python, script, &inputs);
        for ((case, bdk, ksn, key_type), answer) in self.theirs.iter().zip(&blocks) {
            let block = PinBlock::from_hex(answer["block"].as_str().expect("block")).unwrap();
            let format = Format::from_number(case["format"].as_u64().unwrap() as u8).unwrap();
            let pan = Pan::new(case["pan"].as_str().unwrap()).unwrap();
            let pin = dukpt::decipher_pin(bdk, ksn, *key_type, format, &block, Some(&pan))
                .unwrap_or_else(|e| panic!("case {case}: {e}"));
            assert_eq!(pin.expose_secret(), case["pin"].as_str().unwrap(), "{case}");
        }
    }
}

#[test]
#[cfg_attr(
    skip_oracle,
    ignore = "COFRE_SKIP_ORACLE=1: differential oracle skipped on request"
)]
fn tdes_pin_blocks_both_ways_with_pydukpt() {
    let mut rng = common::test_rng(0xD0_0002);
    let mut cases = PinCases::default();
    for _ in 0..2 * PIN_CASES {
        let bdk_hex = rand_hex(&mut rng, 16);
        let bdk = Bdk::new(Algorithm::Tdes, &ClearKey::from_hex(&bdk_hex).unwrap()).unwrap();
        let ksn = Ksn::Tdes(tdes_ksn(&mut rng));
        cases.add(&mut rng, (bdk_hex, bdk, ksn), &[0, 1, 3], |_, _| {
            KeyType::Tdes2
        });
    }
    cases.check(&["pydukpt", "psec"], "dukpt_tdes.py");
}

fn aes_bdk(rng: &mut StdRng) -> String {
    let len = [16, 24, 32][rng.random_range(0..3)];
    rand_hex(rng, len)
}

#[test]
#[cfg_attr(
    skip_oracle,
    ignore = "COFRE_SKIP_ORACLE=1: differential oracle skipped on request"
)]
fn aes_keys_match_the_reference() {
    let mut rng = common::test_rng(0xD0_0003);
    let mut cases = Vec::new();
    for _ in 0..KEY_CASES {
        let bdk_hex = aes_bdk(&mut rng);
        let ksn = aes_ksn(&mut rng);
        let bdk = aes::Bdk::new(&ClearKey::from_hex(&bdk_hex).unwrap()).unwrap();
        let ik = bdk.initial_key(&ksn).unwrap();
        let tk = ik.transaction_key(&ksn).unwrap();
        let base = json!({"bdk": bdk_hex, "ksn": ksn.to_string()});
        let mut initial = base.clone();
        initial["op"] = json!("initial_key");
        cases.push((initial, json!({ "key": hex_of(ik.key()) })));
        let mut transaction = base.clone();
        transaction["op"] = json!("transaction_key");
        cases.push((transaction, json!({ "key": hex_of(tk.key()) })));
        // Every type, including those stronger than the BDK (both sides must refuse).
        let usage = KeyUsage::ALL[rng.random_range(0..KeyUsage::ALL.len())];
        let key_type = KeyType::ALL[rng.random_range(0..KeyType::ALL.len())];
        let ours = match tk.working_key(usage, key_type) {
            Ok(k) => json!({ "key": hex_of(&k) }),
            Err(_) => json!({ "error": true }),
        };
        let mut working = base;
        working["op"] = json!("working_key");
        working["usage"] = json!(usage_name(usage));
        working["key_type"] = json!(key_type_name(key_type));
        cases.push((working, ours));
    }
    compare(&["psec", "cryptography"], "dukpt_aes_reference.py", cases);
}

#[test]
#[cfg_attr(
    skip_oracle,
    ignore = "COFRE_SKIP_ORACLE=1: differential oracle skipped on request"
)]
fn aes_counter_refusals_match_the_reference() {
    let mut rng = common::test_rng(0xD0_0004);
    let cases = (0..REFUSAL_CASES)
        .map(|i| {
            let counter = match i % 3 {
                0 => 0,
                1 => rng.random_range(aes::LAST_COUNTER + 1..=u32::MAX),
                // 17 or more one-bits below the last counter.
                _ => loop {
                    let c = rng.random_range(1..aes::LAST_COUNTER);
                    if c.count_ones() > aes::MAX_ONE_BITS {
                        break c;
                    }
                },
            };
            let bdk_hex = aes_bdk(&mut rng);
            let ksn = aes_ksn(&mut rng).with_counter(counter);
            let bdk = Bdk::new(Algorithm::Aes, &ClearKey::from_hex(&bdk_hex).unwrap()).unwrap();
            assert!(bdk.transaction_key(&Ksn::Aes(ksn)).is_err(), "{ksn}");
            (
                json!({"op": "transaction_key", "bdk": bdk_hex, "ksn": ksn.to_string()}),
                json!({ "error": true }),
            )
        })
        .collect();
    compare(&["psec", "cryptography"], "dukpt_aes_reference.py", cases);
}

#[test]
#[cfg_attr(
    skip_oracle,
    ignore = "COFRE_SKIP_ORACLE=1: differential oracle skipped on request"
)]
fn aes_pin_blocks_both_ways_with_the_reference() {
    let mut rng = common::test_rng(0xD0_0005);
    let mut cases = PinCases::default();
    for _ in 0..2 * PIN_CASES {
        let bdk_hex = aes_bdk(&mut rng);
        let aes_bdk = aes::Bdk::new(&ClearKey::from_hex(&bdk_hex).unwrap()).unwrap();
        let initial_type = aes_bdk.key_type();
        let ksn = Ksn::Aes(aes_ksn(&mut rng));
        // Format 4 under any AES PIN key the BDK allows; 0, 1, 3 under 2TDEA or 3TDEA.
        let key_type = move |rng: &mut StdRng, format: u8| {
            let choices: Vec<KeyType> = KeyType::ALL
                .into_iter()
                .filter(|t| (t.algorithm() == Algorithm::Aes) == (format == 4))
                .filter(|t| t.derivable_from(initial_type))
                .collect();
            choices[rng.random_range(0..choices.len())]
        };
        let entry = (bdk_hex, Bdk::Aes(aes_bdk), ksn);
        cases.add(&mut rng, entry, &[4, 4, 0, 1, 3], key_type);
    }
    cases.check(&["psec", "cryptography"], "dukpt_aes_reference.py");
}
