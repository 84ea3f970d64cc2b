//! DUKPT refusals through the live daemon (protocol/README.md, "DUKPT input", and
//! "Which status for which case"): KSN counters no terminal sends, KSNs of other
//! lengths, formats a variant does not carry, keys of another kind or variant, and
//! pin.change with a KSN each answer their status, count no try, and leave the
//! connection answering. Then terminal blocks made by the independent oracles (pydukpt
//! for TDES DUKPT, the X9.24-3 reference of `tests/oracle/` for AES DUKPT) translate to
//! the format 0 block expected, for AES DUKPT under PIN keys of every size
//! (`pin_key_type`), refused where the reference refuses the key type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod daemon;
#[path = "daemon/dukpt_terminal.rs"]
mod dukpt_terminal;

use cofre::crypto::dukpt::Ksn;
use cofre::protocol::{FieldsWriter, Opcode, Status, Tag};
use dukpt_terminal::*;
use rand::{Rng, RngExt};
use serde_json::json;

#[test]
fn refused_ksns_formats_and_keys_answer_their_status() {
    let d = daemon("dukpt-refusals");
    let mut c = d.connect("issuing-host-1");
    let pan = TDES_PAN;
    let block8 = hex::decode(TDES_BLOCK).unwrap();
    let block16 = hex::decode(AES_BLOCK).unwrap();

    // KSN counters no terminal sends (X9.24-1 A.2: at most 10 one-bits in 21 bits, the
    // last being 1FF800; X9.24-3: 16 in 32, the last FFFF0000).
    for (ksn, want) in [
        (tdes_ksn(0), "counter_zero"),
        (tdes_ksn(0x1F_FFFF), "counter_exhausted"),
        (tdes_ksn(0x1F_F801), "counter_exhausted"),
        (tdes_ksn(0x00_07FF), "counter_one_bits"),
        (aes_ksn(0), "counter_zero"),
        (aes_ksn(0xFFFF_FFFF), "counter_exhausted"),
        (aes_ksn(0x0001_FFFF), "counter_one_bits"),
    ] {
        let (bdk, format, block) = match ksn {
            Ksn::Tdes(_) => ("bdk.x924", 0, &block8),
            Ksn::Aes(_) => ("bdk.aes", 4, &block16),
        };
        let r = verify(&mut c, bdk, &ksn_bytes(&ksn), format, block, pan);
        assert_eq!(
            (r.status(), reason(&r)),
            (Status::KsnRefused, want.to_owned()),
            "{ksn}: {}",
            r.message()
        );
        let r = translate(
            &mut c,
            (bdk, &ksn_bytes(&ksn)),
            (format, block),
            pan,
            ("zpk.example", 0),
        );
        assert_eq!(r.status(), Status::KsnRefused, "{ksn}");
    }

    // KSNs of every other length are malformed, never a panic.
    for len in [0usize, 1, 9, 11, 13, 16, 255] {
        let r = verify(&mut c, "bdk.x924", &vec![0xFF; len], 0, &block8, pan);
        assert_eq!(
            (r.status(), field(&r)),
            (Status::MalformedField, Some(Tag::Ksn.code())),
            "{len} bytes"
        );
    }

    let tdes = hex::decode(TDES_KSN).unwrap();
    let aes = hex::decode(AES_KSN).unwrap();
    // Formats: TDES DUKPT carries 0, 1, 3; AES DUKPT 4 only; format 2 never.
    for (bdk, ksn, format, block) in [
        ("bdk.x924", &tdes, 4, &block16),
        ("bdk.aes", &aes, 0, &block8),
        ("bdk.aes", &aes, 3, &block8),
        ("bdk.x924", &tdes, 2, &block8),
    ] {
        let r = verify(&mut c, bdk, ksn, format, block, pan);
        assert_eq!(
            (r.status(), field(&r)),
            (Status::MalformedField, Some(Tag::Format.code())),
            "{bdk} format {format}: {}",
            r.message()
        );
    }
    // Key usage: a zone key with a KSN, a BDK without one, a KSN of the other variant,
    // a BDK as the translation's destination.
    for (key, ksn, format, block) in [
        ("zpk.example", Some(&tdes), 0, &block8),
        ("pvk.example", Some(&tdes), 0, &block8),
        ("bdk.x924", None, 0, &block8),
        ("bdk.x924", Some(&aes), 4, &block16),
        ("bdk.aes", Some(&tdes), 0, &block8),
    ] {
        let r = c.call(Opcode::PinVerify, |w| {
            w.str(Tag::Pan, pan).str(Tag::Key, key);
            if let Some(k) = ksn {
                w.bytes(Tag::Ksn, k);
            }
            w.u8(Tag::Format, format)
                .bytes(Tag::PinBlock, block)
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, &pvv_of("1234", pan));
        });
        assert_eq!(
            r.status(),
            Status::WrongKeyUsage,
            "{key} {ksn:?}: {}",
            r.message()
        );
    }
    let r = translate(
        &mut c,
        ("bdk.x924", &tdes),
        (0, &block8),
        pan,
        ("bdk.x924", 0),
    );
    assert_eq!(r.status(), Status::WrongKeyUsage);
    let r = verify(&mut c, "bdk.missing", &tdes, 0, &block8, pan);
    assert_eq!(r.status(), Status::UnknownKey);
    // A 24-byte TDES BDK is stored (for exchange) and loads, but X9.24-1 derives from
    // double-length BDKs only: a KSN with it is wrong_key_usage, and the daemon keeps
    // serving the others.
    import_bdks(
        &d,
        &[(
            "bdk.triple",
            "D0000B0TX00N0000",
            "0123456789ABCDEFFEDCBA987654321089ABCDEF01234567",
        )],
    );
    let r = verify(&mut c, "bdk.triple", &tdes, 0, &block8, pan);
    assert_eq!(r.status(), Status::WrongKeyUsage, "{}", r.message());
    // pin.change takes no KSN (its two blocks would need two).
    let body = |w: &mut FieldsWriter<'_>| {
        w.str(Tag::Pan, pan)
            .str(Tag::Key, "bdk.x924")
            .bytes(Tag::Ksn, &tdes)
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &block8)
            .bytes(Tag::NewPinBlock, &block8)
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv_of("1234", pan));
    };
    let r = c.call(Opcode::PinChange, body);
    assert_eq!(
        (r.status(), field(&r)),
        (Status::MalformedField, Some(Tag::Ksn.code()))
    );
    // The right block under the wrong KSN of the same device: invalid or another PIN,
    // never PIN 1234.
    let r = verify(
        &mut c,
        "bdk.x924",
        &ksn_bytes(&tdes_ksn(2)),
        0,
        &block8,
        pan,
    );
    assert!(
        matches!(
            r.status(),
            Status::InvalidPinBlock | Status::VerificationFailed
        ),
        "{:?}",
        r.status()
    );
    // None of the refusals above counted a try (only the last one may have).
    let r = c.call(Opcode::PinAttempts, |w| {
        w.str(Tag::Pan, pan);
    });
    assert!(r.u32(Tag::Attempts) <= 1);
    // And the connection still answers.
    let r = verify(&mut c, "bdk.x924", &tdes, 0, &block8, pan);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
}

/// Terminal blocks enciphered by the independent oracles, over seeded random KSNs
/// (counters a device may send, the last usable ones included), PINs of 4 to 12 digits
/// and PANs, translate to exactly the format 0 block of the same PIN under zpk.example.
#[test]
#[cfg_attr(
    skip_oracle,
    ignore = "COFRE_SKIP_ORACLE=1: differential oracle skipped on request"
)]
fn oracle_terminal_blocks_translate_to_the_expected_zone_block() {
    let python = common::oracle_python(&["psec", "cryptography", "pydukpt"]);
    let mut rng = common::test_rng(21);
    let digits = |rng: &mut rand::rngs::StdRng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect()
    };
    let valid = |rng: &mut rand::rngs::StdRng, bits: u32, most: u32| -> u32 {
        let ones = rng.random_range(1..=most);
        let mut c = 0u32;
        while c.count_ones() < ones {
            c |= 1 << rng.random_range(0..bits);
        }
        c
    };
    let (mut tdes_cases, mut aes_cases, mut cards) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..48 {
        let (pin_len, pan_len) = (rng.random_range(4..=12), rng.random_range(13..=19));
        let pin = digits(&mut rng, pin_len);
        let pan = digits(&mut rng, pan_len);
        let mut prefix = [0u8; 12];
        rng.fill_bytes(&mut prefix);
        if i % 2 == 0 {
            let counter = match i % 12 {
                0 => 1,
                2 => 0x1F_F800,
                _ => valid(&mut rng, 21, 10),
            };
            let ksn = match Ksn::from_bytes(&prefix[..10]).unwrap() {
                Ksn::Tdes(k) => Ksn::Tdes(k.with_counter(counter).unwrap()),
                Ksn::Aes(_) => unreachable!(),
            };
            let format = [0, 1, 3][rng.random_range(0..3)];
            tdes_cases.push(json!({"op": "pin_encipher", "bdk": TDES_BDK,
                "ksn": ksn.to_string(), "format": format, "pin": pin, "pan": pan}));
            cards.push((true, ksn, format, pin, pan));
        } else {
            let counter = match i % 12 {
                1 => 1,
                3 => 0xFFFF_0000,
                _ => valid(&mut rng, 32, 16),
            };
            let ksn = match Ksn::from_bytes(&prefix).unwrap() {
                Ksn::Aes(k) => Ksn::Aes(k.with_counter(counter)),
                Ksn::Tdes(_) => unreachable!(),
            };
            aes_cases.push(json!({"op": "pin_encipher", "bdk": AES_BDK,
                "ksn": ksn.to_string(), "key_type": "AES-128", "format": 4, "pin": pin,
                "pan": pan}));
            cards.push((false, ksn, 4, pin, pan));
        }
    }
    let mut tdes_blocks = common::run_oracle(&python, "dukpt_tdes.py", &tdes_cases).into_iter();
    let mut aes_blocks =
        common::run_oracle(&python, "dukpt_aes_reference.py", &aes_cases).into_iter();
    let d = daemon("dukpt-oracle");
    let mut c = d.connect("issuing-host-1");
    for (tdes, ksn, format, pin, pan) in cards {
        let answer = if tdes {
            tdes_blocks.next()
        } else {
            aes_blocks.next()
        };
        let block = hex::decode(answer.unwrap()["block"].as_str().unwrap()).unwrap();
        let bdk = if tdes { "bdk.x924" } else { "bdk.aes" };
        let r = translate(
            &mut c,
            (bdk, &ksn_bytes(&ksn)),
            (format, &block),
            &pan,
            ("zpk.example", 0),
        );
        assert_eq!(
            r.status(),
            Status::Ok,
            "{ksn} format {format}: {}",
            r.message()
        );
        assert_eq!(
            r.bytes(Tag::PinBlock),
            iso0_under_zpk(&pin, &pan),
            "{ksn} format {format}"
        );
    }
}

/// Seeded random KSNs (valid counters, the first and last included), PINs and PANs;
/// BDKs of each size (the published and test ones, plus a seeded random one each); every
/// AES PIN key type. The reference enciphers the terminal's block, or refuses the key
/// type; the daemon translates that block to the expected zone block, or refuses it.
#[test]
#[cfg_attr(
    skip_oracle,
    ignore = "COFRE_SKIP_ORACLE=1: differential oracle skipped on request"
)]
fn reference_blocks_of_every_aes_pin_key_size_translate() {
    let python = common::oracle_python(&["psec", "cryptography"]);
    let mut rng = common::test_rng(0x21_2D);
    let hex_of = |rng: &mut rand::rngs::StdRng, n: usize| {
        let mut b = vec![0u8; n];
        rng.fill_bytes(&mut b);
        hex::encode_upper(b)
    };
    let mut bdks: Vec<(String, String)> = vec![
        ("bdk.aes".into(), AES_BDK.into()),
        ("bdk.aes192".into(), AES192_BDK.into()),
        ("bdk.aes256".into(), AES256_BDK.into()),
    ];
    for len in [16, 24, 32] {
        bdks.push((format!("bdk.random{len}"), hex_of(&mut rng, len)));
    }
    let d = key_types_daemon("dukpt-key-types-oracle");
    let imports: Vec<(&str, &str, &str)> = bdks[3..]
        .iter()
        .map(|(id, key)| (id.as_str(), "D0000B0AX00N0000", key.as_str()))
        .collect();
    import_bdks(&d, &imports);

    let digits = |rng: &mut rand::rngs::StdRng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect()
    };
    let mut cases = Vec::new();
    let mut inputs = Vec::new();
    for i in 0..72u32 {
        let (id, bdk) = bdks[rng.random_range(0..bdks.len())].clone();
        let key_type: u8 = rng.random_range(2..=4);
        let counter = match i % 9 {
            0 => 1,
            1 => 0xFFFF_0000,
            _ => loop {
                let c = rng.random_range(1..0xFFFF_0000u32);
                if c.count_ones() <= 16 {
                    break c;
                }
            },
        };
        let ksn = format!("{}{counter:08X}", hex_of(&mut rng, 8));
        let (pin_len, pan_len) = (rng.random_range(4..=12), rng.random_range(13..=19));
        let (pin, pan) = (digits(&mut rng, pin_len), digits(&mut rng, pan_len));
        let name = ["", "", "AES-128", "AES-192", "AES-256"][usize::from(key_type)];
        inputs.push(
            json!({"op": "pin_encipher", "bdk": bdk, "ksn": ksn, "key_type": name,
            "format": 4, "pin": pin, "pan": pan}),
        );
        cases.push((id, ksn, key_type, pin, pan));
    }
    let answers = common::run_oracle(&python, "dukpt_aes_reference.py", &inputs);
    let mut c = d.connect("issuing-host-1");
    let (mut translated, mut refused) = (0, 0);
    for ((id, ksn, key_type, pin, pan), answer) in cases.into_iter().zip(answers) {
        let what = format!("{id} {ksn} pin_key_type {key_type}");
        let ksn = hex::decode(&ksn).unwrap();
        match answer["block"].as_str() {
            Some(block) => {
                let block = hex::decode(block).unwrap();
                let r = translate_typed(&mut c, (&id, &ksn), Some(key_type), &block, &pan);
                assert_eq!(r.status(), Status::Ok, "{what}: {}", r.message());
                assert_eq!(r.bytes(Tag::PinBlock), iso0_under_zpk(&pin, &pan), "{what}");
                translated += 1;
            }
            None => {
                assert_eq!(answer["error"], json!(true), "{what}");
                let r = translate_typed(&mut c, (&id, &ksn), Some(key_type), &[0x5A; 16], &pan);
                assert_eq!(
                    (r.status(), reason(&r)),
                    (Status::WrongKeyUsage, "pin_key_type_too_strong".to_owned()),
                    "{what}"
                );
                refused += 1;
            }
        }
    }
    // Both outcomes were exercised.
    assert!(translated > 30 && refused > 5, "{translated} {refused}");
}
