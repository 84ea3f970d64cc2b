//! The rules around the derivations: KSN parsing, counter refusals, variant and key-length
//! checks, and that nothing secret prints (the PIN block rules are tested in `pin.rs`).
//! The published known-answer vectors are in `tests/dukpt_vectors_tdes.rs` and
//! `tests/dukpt_vectors_aes.rs`.

use super::*;

pub(super) const TDES_BDK: &str = "0123456789ABCDEFFEDCBA9876543210";
pub(super) const AES_BDK: &str = "FEDCBA9876543210F1F1F1F1F1F1F1F1";

pub(super) fn key(h: &str) -> ClearKey {
    ClearKey::from_hex(h).unwrap()
}

pub(super) fn dukpt_err(e: Error) -> DukptError {
    match e {
        Error::Dukpt(d) => d,
        other => panic!("expected a DUKPT error, got {other:?}"),
    }
}

pub(super) fn tdes_ksn(counter: u32) -> Ksn {
    let base = tdes::Ksn::from_hex("FFFF9876543210E00000").unwrap();
    Ksn::Tdes(base.with_counter(counter).unwrap())
}

pub(super) fn aes_ksn(counter: u32) -> Ksn {
    let base = aes::Ksn::from_hex("123456789012345600000000").unwrap();
    Ksn::Aes(base.with_counter(counter))
}

#[test]
fn ksn_parsing_is_total_and_picks_the_variant_by_length() {
    assert!(matches!(
        Ksn::from_hex("FFFF9876543210E00001"),
        Ok(Ksn::Tdes(_))
    ));
    assert!(matches!(
        Ksn::from_hex(" 123456789012345600000001 "),
        Ok(Ksn::Aes(_))
    ));
    for bad in [
        "",
        "FF",
        "FFFF9876543210E000",
        "FFFF9876543210E0000100",
        "12345678901234560000000100",
    ] {
        assert!(
            matches!(
                Ksn::from_hex(bad),
                Err(Error::FieldLength { field: "KSN", .. })
            ),
            "{bad:?}"
        );
    }
    for bad in ["FFFF9876543210E0000G", "FFFF9876543210E000011", "ü"] {
        assert_eq!(Ksn::from_hex(bad), Err(Error::Hex("KSN")), "{bad:?}");
    }
    assert!(tdes::Ksn::from_hex("123456789012345600000001").is_err());
    assert!(aes::Ksn::from_hex("FFFF9876543210E00001").is_err());
    // A KSN is public: it prints as itself.
    let k = Ksn::from_hex("ffff9876543210e00001").unwrap();
    assert_eq!(k.to_string(), "FFFF9876543210E00001");
    assert_eq!(k.counter(), 1);
    // The counter is the KSN's low 21 bits (TDES) or 32 bits (AES), whichever the variant.
    assert_eq!(tdes_ksn(0x0A_5A5A).counter(), 0x0A_5A5A);
    assert_eq!(
        Ksn::from_hex("1234567890123456A5A5A5A5").unwrap().counter(),
        0xA5A5_A5A5
    );
}

// KSNs and key types are public: they print as themselves, in both variants.
#[test]
fn ksns_and_key_types_print_as_themselves() {
    let a = aes::Ksn::from_hex("123456789012345600000001").unwrap();
    assert_eq!(a.to_string(), "123456789012345600000001");
    assert_eq!(format!("{a:?}"), "aes::Ksn(123456789012345600000001)");
    assert_eq!(hex::encode_upper(a.as_bytes()), "123456789012345600000001");
    assert_eq!(Ksn::Aes(a).to_string(), "123456789012345600000001");
    let t = tdes::Ksn::from_hex("FFFF9876543210E00001").unwrap();
    assert_eq!(format!("{t:?}"), "tdes::Ksn(FFFF9876543210E00001)");
    assert_eq!(hex::encode_upper(t.as_bytes()), "FFFF9876543210E00001");
    let names: Vec<String> = KeyType::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["2TDEA", "3TDEA", "AES-128", "AES-192", "AES-256"]);
}

// Whatever a terminal or an attacker sends as a KSN (any length, any characters, any
// counter) is an error or a derivation, never a panic.
#[test]
fn hostile_ksns_are_errors_not_panics() {
    use rand::{Rng, RngExt};
    let mut rng = seeded();
    let bdks = [
        Bdk::new(Algorithm::Tdes, &key(TDES_BDK)).unwrap(),
        Bdk::new(Algorithm::Aes, &key(AES_BDK)).unwrap(),
    ];
    let alphabet = b"0123456789ABCDEFabcdefXZ -\xff";
    for _ in 0..3000 {
        let len = rng.random_range(0..=30);
        let text: String = if rng.random_bool(0.5) {
            let mut bytes = vec![0u8; len / 2];
            rng.fill_bytes(&mut bytes);
            hex::encode(bytes)
        } else {
            (0..len)
                .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
                .collect()
        };
        if let Ok(ksn) = Ksn::from_hex(&text) {
            for bdk in &bdks {
                let accepted = bdk.transaction_key(&ksn).is_ok();
                let rules_pass = ksn.check_counter().is_ok();
                let same_variant = matches!(
                    (bdk, ksn),
                    (Bdk::Tdes(_), Ksn::Tdes(_)) | (Bdk::Aes(_), Ksn::Aes(_))
                );
                assert_eq!(accepted, rules_pass && same_variant, "{ksn}");
            }
        }
    }
}

#[test]
fn tdes_counter_is_the_rightmost_21_bits() {
    let k = tdes::Ksn::from_hex("FFFF9876543210FFFFFF").unwrap();
    assert_eq!(k.counter(), 0x1F_FFFF);
    let k = k.with_counter(0x00_0005).unwrap();
    assert_eq!(k.to_string(), "FFFF9876543210E00005");
    assert!(k.with_counter(0x20_0000).is_err());
}

#[test]
fn counter_rules_each_have_their_own_error() {
    for (ksn, max) in [
        (tdes_ksn as fn(u32) -> Ksn, tdes::MAX_ONE_BITS),
        (aes_ksn, aes::MAX_ONE_BITS),
    ] {
        assert_eq!(
            dukpt_err(ksn(0).check_counter().unwrap_err()),
            DukptError::CounterZero
        );
        // One more one-bit than allowed, well below the last counter.
        let too_many = (1u32 << (max + 1)) - 1;
        assert_eq!(
            dukpt_err(ksn(too_many).check_counter().unwrap_err()),
            DukptError::CounterOneBits { max }
        );
        assert!(ksn(too_many >> 1).check_counter().is_ok());
        assert!(ksn(1).check_counter().is_ok());
    }
    // The last counters are usable; one past them is exhaustion, not "too many bits".
    assert!(tdes_ksn(tdes::LAST_COUNTER).check_counter().is_ok());
    assert!(aes_ksn(aes::LAST_COUNTER).check_counter().is_ok());
    for ksn in [
        tdes_ksn(tdes::LAST_COUNTER + 1),
        tdes_ksn(tdes::COUNTER_MASK),
        aes_ksn(aes::LAST_COUNTER + 1),
        aes_ksn(u32::MAX),
    ] {
        assert_eq!(
            dukpt_err(ksn.check_counter().unwrap_err()),
            DukptError::CounterExhausted,
            "{ksn}"
        );
    }
    // X9.24-3-2017 test vectors include counter 0x1FFFF (17 one-bits), which a device
    // never sends: refused.
    assert_eq!(
        dukpt_err(aes_ksn(0x1FFFF).check_counter().unwrap_err()),
        DukptError::CounterOneBits { max: 16 }
    );
}

#[test]
fn derivation_refuses_bad_counters_too() {
    let bdk = Bdk::new(Algorithm::Tdes, &key(TDES_BDK)).unwrap();
    for c in [0, 0x7FF, tdes::LAST_COUNTER + 1] {
        assert!(bdk.transaction_key(&tdes_ksn(c)).is_err(), "{c:#x}");
    }
    let bdk = Bdk::new(Algorithm::Aes, &key(AES_BDK)).unwrap();
    for c in [0, 0x1FFFF, aes::LAST_COUNTER + 1] {
        assert!(bdk.transaction_key(&aes_ksn(c)).is_err(), "{c:#x}");
    }
}

#[test]
fn next_counter_skips_counters_with_too_many_one_bits() {
    let (last, max) = (tdes::LAST_COUNTER, tdes::MAX_ONE_BITS);
    assert_eq!(next_counter(0, last, max), Some(1));
    assert_eq!(next_counter(0x3FE, last, max), Some(0x3FF));
    assert_eq!(next_counter(0x3FF, last, max), Some(0x400));
    assert_eq!(next_counter(last, last, max), None);
    assert_eq!(next_counter(0x1F_F7FF, last, max), Some(last));
    // Brute force agrees on a stretch of counters.
    for c in 0x1F_0000..0x1F_0400u32 {
        let expected = (c + 1..=last).find(|n| n.count_ones() <= max);
        assert_eq!(next_counter(c, last, max), expected, "{c:#x}");
    }
    let (last, max) = (aes::LAST_COUNTER, aes::MAX_ONE_BITS);
    assert_eq!(next_counter(0x1FFFE, last, max), Some(0x20000));
    assert_eq!(next_counter(0xFFFE_8000, last, max), Some(0xFFFF_0000));
    assert_eq!(next_counter(last, last, max), None);
    assert_eq!(next_counter(u32::MAX, last, max), None);
    let k = aes::Ksn::from_hex("1234567890123456FFFF0000").unwrap();
    assert!(k.next().is_none());
    let k = tdes::Ksn::from_hex("FFFF9876543210E00000").unwrap();
    assert_eq!(k.next().unwrap().to_string(), "FFFF9876543210E00001");
}

#[test]
fn bdk_and_ksn_variants_must_match() {
    let tdes_bdk = Bdk::new(Algorithm::Tdes, &key(TDES_BDK)).unwrap();
    let aes_bdk = Bdk::new(Algorithm::Aes, &key(AES_BDK)).unwrap();
    assert_eq!(
        dukpt_err(tdes_bdk.initial_key(&aes_ksn(1)).unwrap_err()),
        DukptError::VariantMismatch {
            ksn: "AES",
            key: "TDES"
        }
    );
    assert_eq!(
        dukpt_err(aes_bdk.transaction_key(&tdes_ksn(1)).unwrap_err()),
        DukptError::VariantMismatch {
            ksn: "TDES",
            key: "AES"
        }
    );
    let ik = tdes_bdk.initial_key(&tdes_ksn(1)).unwrap();
    assert!(ik.transaction_key(&aes_ksn(1)).is_err());
}

#[test]
fn key_lengths_are_checked() {
    // TDES DUKPT is defined for double-length keys only.
    assert_eq!(
        Bdk::new(Algorithm::Tdes, &key(&"11".repeat(24))).unwrap_err(),
        Error::KeyLength { got: 24 }
    );
    assert!(Bdk::new(Algorithm::Aes, &key(&"11".repeat(20))).is_err());
    for len in [16, 24, 32] {
        assert!(Bdk::new(Algorithm::Aes, &key(&"11".repeat(len))).is_ok());
    }
    assert!(InitialKey::from_clear(&tdes_ksn(1), &key(&"11".repeat(24))).is_err());
    assert!(InitialKey::from_clear(&aes_ksn(1), &key(&"11".repeat(8))).is_err());
}

#[test]
fn debug_never_prints_key_material() {
    let bdk = Bdk::new(Algorithm::Tdes, &key(TDES_BDK)).unwrap();
    let ik = bdk.initial_key(&tdes_ksn(1)).unwrap();
    let tk = ik.transaction_key(&tdes_ksn(1)).unwrap();
    let aes_bdk = Bdk::new(Algorithm::Aes, &key(AES_BDK)).unwrap();
    let aes_tk = aes_bdk.transaction_key(&aes_ksn(1)).unwrap();
    let shown = format!("{bdk:?} {ik:?} {tk:?} {aes_bdk:?} {aes_tk:?}").to_ascii_uppercase();
    for secret in [
        TDES_BDK,
        AES_BDK,
        // The published IPEK and transaction keys of these inputs (X9.24-1:2009 A.4.1 and
        // A.4.2; the X9.24-3-2017 test vectors, counter 1; tests/vectors/published.md).
        "6AC292FAA1315B4D",
        "042666B49184CFA3",
        "4F21B565BAD9835E",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("REDACTED"));
    // Positive control: the same search finds the key when it is printed.
    let exposed = hex::encode_upper(tk.key().expose_secret());
    assert!(exposed.contains("042666B49184CFA3"));
}

// X9.24-3-2017 6.3.2 layout, checked against the derivation data the X9.24-3-2017 test
// vectors print for the AES-128 PIN key of counter 1 (BDK ID 12345678, derivation ID
// 90123456), as transcribed in tests/dukpt_vectors_aes.rs's sources.
#[test]
fn derivation_data_layout() {
    let ksn = aes::Ksn::from_hex("123456789012345600000001").unwrap();
    let data = aes::derivation_data(
        aes::KeyUsage::PinEncryption.indicator(),
        KeyType::Aes128,
        ksn.derivation_tail(1),
    );
    assert_eq!(hex::encode_upper(data), "01011000000200809012345600000001");
    let initial = aes::derivation_data(
        aes::USAGE_INITIAL_KEY,
        KeyType::Aes256,
        ksn.initial_key_id(),
    );
    assert_eq!(
        hex::encode_upper(initial),
        "01018001000401001234567890123456"
    );
}

#[test]
fn strength_rule() {
    use KeyType::*;
    for working in KeyType::ALL {
        assert!(working.derivable_from(Aes256), "{working}");
    }
    assert!(!Aes192.derivable_from(Aes128));
    assert!(!Aes256.derivable_from(Aes128));
    assert!(!Aes256.derivable_from(Aes192));
    assert!(Aes192.derivable_from(Aes192));
    for working in [Tdes2, Tdes3, Aes128] {
        assert!(working.derivable_from(Aes128), "{working}");
    }
}

pub(super) fn seeded() -> rand::rngs::StdRng {
    use rand::SeedableRng;
    rand::rngs::StdRng::seed_from_u64(0xD0_4B7)
}
