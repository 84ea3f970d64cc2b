//! The bounds of request fields that select an algorithm or shape a PAN, each tried on
//! both sides of its edge over real mutual TLS with the example keys: `mac_algorithm`
//! against the key's own algorithm, `pan.generate`'s BIN and PAN length, and the Luhn
//! check a numeric token needs (protocol/README.md, "Operations").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use cofre::crypto::ClearKey;
use cofre::crypto::mac::{self, MacAlgorithm};
use cofre::protocol::{Opcode, Status, Tag};
use daemon::Daemon;

/// The example MAC keys (keys-example/README.md) and the `mac_algorithm` number of
/// each one's own algorithm: 0 ISO 9797-1 algorithm 3, 1 AES-CMAC, 2 HMAC-SHA256.
const MAC_KEYS: [(&str, &str, MacAlgorithm, u8); 3] = [
    (
        "mac.example.retail",
        "0123456789ABCDEFFEDCBA9876543210",
        MacAlgorithm::Iso9797Alg3,
        0,
    ),
    (
        "mac.example.cmac",
        "2B7E151628AED2A6ABF7158809CF4F3C",
        MacAlgorithm::AesCmac,
        1,
    ),
    (
        "mac.example.hmac",
        "4A6566654A6566654A6566654A6566654A6566654A6566654A6566654A656665",
        MacAlgorithm::HmacSha256,
        2,
    ),
];

#[test]
fn mac_algorithm_names_the_key_s_own_algorithm_or_is_refused() {
    let d = Daemon::start("mac-algorithm");
    let mut c = d.connect("issuing-host-1");
    for (id, hex, alg, own) in MAC_KEYS {
        let want = mac::generate(alg, &ClearKey::from_hex(hex).unwrap(), b"0200 message").unwrap();
        for asked in 0u8..=3 {
            let r = c.call(Opcode::MacGenerate, |w| {
                w.str(Tag::Key, id)
                    .bytes(Tag::Data, b"0200 message")
                    .u8(Tag::MacAlgorithm, asked);
            });
            let expected = match asked {
                n if n == own => Status::Ok,
                3 => Status::MalformedField,
                _ => Status::WrongKeyUsage,
            };
            assert_eq!(
                r.status(),
                expected,
                "{id}, mac_algorithm {asked}: {}",
                r.message()
            );
            if expected == Status::Ok {
                assert_eq!(r.bytes(Tag::Mac), want, "{id}");
            } else if expected == Status::MalformedField {
                assert_eq!(
                    r.fields().u8(Tag::Field).unwrap(),
                    Some(Tag::MacAlgorithm.code())
                );
            }
            // Verification takes the same field by the same rule.
            let v = c.call(Opcode::MacVerify, |w| {
                w.str(Tag::Key, id)
                    .bytes(Tag::Data, b"0200 message")
                    .bytes(Tag::Mac, &want)
                    .u8(Tag::MacAlgorithm, asked);
            });
            assert_eq!(v.status(), expected, "verify {id}, mac_algorithm {asked}");
        }
    }
}

#[test]
fn pan_generate_bounds_its_bin_and_length_and_a_numeric_token_needs_luhn() {
    let d = Daemon::start("pan-bounds");
    let mut c = d.connect("issuing-host-1");
    let generate = |c: &mut daemon::Raw, bin: &str, length: Option<u8>| {
        c.call(Opcode::PanGenerate, |w| {
            w.str(Tag::Bin, bin);
            if let Some(n) = length {
                w.u8(Tag::PanLength, n);
            }
        })
    };
    // Accepted at each edge: 6 and 11 digits of BIN, lengths 12 and 19, and a BIN
    // exactly 2 shorter than the PAN (a check digit and one account digit).
    for (bin, length) in [
        ("400000", Some(12)),
        ("400000", Some(19)),
        ("40000000001", Some(13)),
        ("4000000000", Some(12)),
        ("400000", None),
    ] {
        let r = generate(&mut c, bin, length);
        assert_eq!(r.status(), Status::Ok, "{bin} {length:?}: {}", r.message());
        let masked = r.str(Tag::MaskedPan);
        assert_eq!(masked.len(), usize::from(length.unwrap_or(16)), "{bin}");
        assert!(masked.starts_with(&bin[..6]), "{masked}");
    }
    // Refused just past each edge, naming the field.
    for (bin, length, field) in [
        ("40000", None, Tag::Bin),
        ("400000000001", None, Tag::Bin),
        ("40000A", None, Tag::Bin),
        ("400000", Some(11), Tag::PanLength),
        ("400000", Some(20), Tag::PanLength),
        ("40000000001", Some(12), Tag::PanLength),
    ] {
        let r = generate(&mut c, bin, length);
        assert_eq!(r.status(), Status::MalformedField, "{bin} {length:?}");
        assert_eq!(
            r.fields().u8(Tag::Field).unwrap(),
            Some(field.code()),
            "{bin} {length:?}: {}",
            r.message()
        );
        // The request's own check answers (the crypto core behind it refuses the same
        // bounds, in other words: its message would mean this check was skipped).
        let rule = if field == Tag::Bin {
            "BIN must be 6-11 digits"
        } else {
            "pan_length must be 12-19 and at least 2 more than the BIN"
        };
        assert!(
            r.message().contains(rule),
            "{bin} {length:?}: {}",
            r.message()
        );
    }

    // A numeric token keeps the Luhn property, so its PAN must have it; an
    // alphanumeric one does not need it.
    let tokenise = |c: &mut daemon::Raw, pan: &str, alphabet: u8| {
        c.call(Opcode::Tokenise, |w| {
            w.str(Tag::Pan, pan).u8(Tag::Alphabet, alphabet);
        })
    };
    assert_eq!(tokenise(&mut c, "4111111111111111", 0).status(), Status::Ok);
    let r = tokenise(&mut c, "4111111111111112", 0);
    assert_eq!(r.status(), Status::MalformedField, "{}", r.message());
    assert_eq!(r.fields().u8(Tag::Field).unwrap(), Some(Tag::Pan.code()));
    let r = tokenise(&mut c, "4111111111111112", 1);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
}
