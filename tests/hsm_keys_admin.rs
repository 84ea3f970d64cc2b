//! Key administration and key-bound rules over real mutual TLS (protocol/keys.md):
//! every refusal names its field or status, TR-31 import follows usage and mode of use
//! per kind, the MAC length a verification accepts is the key's (with its failure
//! metric), 16-byte dCVV2 keys work, and every answer about a card named by token
//! carries token_version.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use cofre::crypto::{ClearKey, tr31};
use cofre::protocol::{FieldsWriter, Opcode, Status, Tag};
use daemon::{Daemon, Raw};

const KEK: &str = "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6";
const RETAIL: &str = "0123456789ABCDEFFEDCBA9876543210";

fn wrapped(header: &str, key: &str) -> String {
    tr31::wrap(
        &ClearKey::from_hex(KEK).unwrap(),
        &tr31::Header::parse(header).unwrap(),
        &ClearKey::from_hex(key).unwrap(),
        &mut rand::rng(),
    )
    .unwrap()
}

/// A request body written by a test case.
type Body = Box<dyn Fn(&mut FieldsWriter<'_>)>;

fn field(r: &daemon::Resp) -> Option<u8> {
    r.fields().u8(Tag::Field).unwrap()
}

/// Every malformed key administration request names the field at fault.
#[test]
fn key_administration_refusals_name_their_field() {
    let d = Daemon::start("keys-admin-fields");
    let mut so = d.connect("security-officer-1");
    let cases: Vec<(Opcode, Tag, Body)> = vec![
        (
            Opcode::KeyGenerate,
            Tag::Key,
            Box::new(|w| {
                w.str(Tag::Key, "Bad Id").str(Tag::Kind, "zpk");
            }),
        ),
        (
            Opcode::KeyGenerate,
            Tag::Key,
            Box::new(|w| {
                w.str(Tag::Key, "").str(Tag::Kind, "zpk");
            }),
        ),
        (
            Opcode::KeyGenerate,
            Tag::Key,
            Box::new(|w| {
                w.str(Tag::Kind, "zpk");
            }),
        ),
        (
            Opcode::KeyGenerate,
            Tag::Kind,
            Box::new(|w| {
                w.str(Tag::Key, "k.a");
            }),
        ),
        (
            Opcode::KeyGenerate,
            Tag::Kind,
            Box::new(|w| {
                w.str(Tag::Key, "k.a").str(Tag::Kind, "hsm");
            }),
        ),
        (
            Opcode::KeyGenerate,
            Tag::Algorithm,
            Box::new(|w| {
                w.str(Tag::Key, "k.a")
                    .str(Tag::Kind, "pvk")
                    .str(Tag::Algorithm, "aes");
            }),
        ),
        (
            Opcode::KeyGenerate,
            Tag::Algorithm,
            Box::new(|w| {
                w.str(Tag::Key, "k.a")
                    .str(Tag::Kind, "zpk")
                    .str(Tag::Algorithm, "rsa");
            }),
        ),
        (
            Opcode::KeyGenerate,
            Tag::KeyLength,
            Box::new(|w| {
                w.str(Tag::Key, "k.a")
                    .str(Tag::Kind, "cvk")
                    .u8(Tag::KeyLength, 24);
            }),
        ),
        (
            Opcode::KeyGenerate,
            Tag::KeyLength,
            Box::new(|w| {
                w.str(Tag::Key, "k.a")
                    .str(Tag::Kind, "lookup")
                    .u8(Tag::KeyLength, 16);
            }),
        ),
        (
            Opcode::KeyGenerate,
            Tag::MacMinLength,
            Box::new(|w| {
                w.str(Tag::Key, "k.a")
                    .str(Tag::Kind, "zpk")
                    .u8(Tag::MacMinLength, 4);
            }),
        ),
        (
            Opcode::KeyGenerate,
            Tag::MacMinLength,
            Box::new(|w| {
                w.str(Tag::Key, "k.a")
                    .str(Tag::Kind, "mac")
                    .u8(Tag::MacMinLength, 3);
            }),
        ),
        (
            Opcode::KeyGenerate,
            Tag::MacMinLength,
            Box::new(|w| {
                w.str(Tag::Key, "k.a")
                    .str(Tag::Kind, "mac")
                    .u8(Tag::MacMinLength, 9);
            }),
        ),
        (
            Opcode::KeyGenerate,
            Tag::Key,
            Box::new(|w| {
                w.str(Tag::Key, "zpk.example").str(Tag::Kind, "zpk");
            }),
        ),
        (
            Opcode::KeyImport,
            Tag::Key,
            Box::new(|w| {
                w.str(Tag::Key, "BAD")
                    .str(Tag::Kek, "kek.example")
                    .str(Tag::KeyBlock, "x");
            }),
        ),
        (
            Opcode::KeyImport,
            Tag::Kek,
            Box::new(|w| {
                w.str(Tag::Key, "k.b").str(Tag::KeyBlock, "x");
            }),
        ),
        (
            Opcode::KeyImport,
            Tag::KeyBlock,
            Box::new(|w| {
                w.str(Tag::Key, "k.b").str(Tag::Kek, "kek.example");
            }),
        ),
        (
            Opcode::KeyImport,
            Tag::Kind,
            Box::new(|w| {
                w.str(Tag::Key, "k.b")
                    .str(Tag::Kek, "kek.example")
                    .str(Tag::KeyBlock, "x")
                    .str(Tag::Kind, "nope");
            }),
        ),
        (
            Opcode::KeyImport,
            Tag::MacMinLength,
            Box::new(|w| {
                w.str(Tag::Key, "k.b")
                    .str(Tag::Kek, "kek.example")
                    .str(Tag::KeyBlock, "x")
                    .str(Tag::Kind, "zpk")
                    .u8(Tag::MacMinLength, 4);
            }),
        ),
        (
            Opcode::KeyImport,
            Tag::Key,
            Box::new(|w| {
                w.str(Tag::Key, "zpk.example")
                    .str(Tag::Kek, "kek.example")
                    .str(Tag::KeyBlock, &wrapped("D0000P0TB00E0000", RETAIL));
            }),
        ),
        (
            Opcode::KeyExport,
            Tag::Key,
            Box::new(|w| {
                w.str(Tag::Kek, "kek.example");
            }),
        ),
        (
            Opcode::KeyExport,
            Tag::Kek,
            Box::new(|w| {
                w.str(Tag::Key, "zpk.example");
            }),
        ),
        (
            Opcode::KeyExport,
            Tag::Kek,
            Box::new(|w| {
                w.str(Tag::Key, "zpk.example.aes")
                    .str(Tag::Kek, "kek.example.tdes");
            }),
        ),
        (
            Opcode::KeyRetire,
            Tag::KeyVersion,
            Box::new(|w| {
                w.str(Tag::Key, "zpk.example");
            }),
        ),
        (Opcode::KeyRotate, Tag::Key, Box::new(|_| {})),
    ];
    for (i, (op, tag, body)) in cases.iter().enumerate() {
        let r = so.call(*op, |w| body(w));
        assert_eq!(
            r.status(),
            Status::MalformedField,
            "case {i} {op}: {}",
            r.message()
        );
        assert_eq!(
            field(&r),
            Some(tag.code()),
            "case {i} {op}: {}",
            r.message()
        );
    }
    let r = so.call(Opcode::KeyGenerate, |w| {
        w.str(Tag::Key, "zpk.example").str(Tag::Kind, "zpk");
    });
    assert_eq!(r.fields().str(Tag::Reason).unwrap(), Some("key_exists"));
    // Other refusals are their own statuses.
    let r = so.call(Opcode::KeyExport, |w| {
        w.str(Tag::Key, "token.example")
            .str(Tag::Kek, "kek.example");
    });
    assert_eq!(r.status(), Status::NotExportable);
    let r = so.call(Opcode::KeyExport, |w| {
        w.str(Tag::Key, "zpk.none").str(Tag::Kek, "kek.example");
    });
    assert_eq!(r.status(), Status::UnknownKey);
    let r = so.call(Opcode::KeyImport, |w| {
        w.str(Tag::Key, "k.c")
            .str(Tag::Kek, "zpk.example")
            .str(Tag::KeyBlock, "x");
    });
    assert_eq!(r.status(), Status::WrongKeyUsage);
}

/// TR-31 import: the header's usage and mode name the kind, and must fit the kind
/// named; what export writes imports back as the same kind.
#[test]
fn tr31_import_follows_usage_and_mode_of_use() {
    let d = Daemon::start("keys-admin-tr31");
    let mut so = d.connect("security-officer-1");
    let import = |so: &mut Raw, id: &str, block: &str, kind: Option<&str>| {
        so.call(Opcode::KeyImport, |w| {
            w.str(Tag::Key, id)
                .str(Tag::Kek, "kek.example")
                .str(Tag::KeyBlock, block);
            if let Some(k) = kind {
                w.str(Tag::Kind, k);
            }
        })
    };
    let list = |so: &mut Raw| so.call(Opcode::KeyList, |_| {}).str(Tag::Listing);
    // Header alone: the kind each usage and mode stand for.
    for (i, (header, key, kind)) in [
        ("D0000P0TB00E0000", RETAIL, "zpk"),
        ("D0000P0TE00E0000", RETAIL, "pin-delivery"),
        ("D0000D0TE00E0000", RETAIL, "transport"),
        (
            "D0000D0AB00N0000",
            "2B7E151628AED2A6ABF7158809CF4F3C",
            "token",
        ),
        ("D0000V1TC00E0000", RETAIL, "pvk"),
        ("D0000M3TC00E0000", RETAIL, "mac"),
        (
            "D0000K1AB00N0000",
            "2B7E151628AED2A6ABF7158809CF4F3C",
            "kek",
        ),
        ("D0000B0TX00N0000", RETAIL, "bdk"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("imported.{i}");
        let r = import(&mut so, &id, &wrapped(header, key), None);
        assert_eq!(r.status(), Status::Ok, "{header}: {}", r.message());
        assert!(
            list(&mut so).contains(&format!("{id} v1 {kind} ")),
            "{header} -> {kind}"
        );
    }
    // The mode must be the kind's: refused, not widened. (A block whose mode its
    // usage forbids, such as M3 with N, cannot be made here: the TR-31 core refuses to
    // wrap it, tested in src/crypto/tr31/tests_negative.rs.)
    for (header, kind) in [
        ("D0000P0TD00E0000", None),
        ("D0000P0TE00E0000", Some("zpk")),
        ("D0000P0TB00E0000", Some("pin-delivery")),
        ("D0000V0TV00E0000", None),
        ("D0000C0TG00E0000", None),
        ("D0000D0TD00E0000", None),
        ("D0000D0TD00E0000", Some("transport")),
        ("D0000C0TC00E0000", Some("pvk")),
        ("D0000E0TX00E0000", None),
    ] {
        let r = import(&mut so, "refused.x", &wrapped(header, RETAIL), kind);
        assert_eq!(
            r.status(),
            Status::KeyBlockRefused,
            "{header} {kind:?}: {}",
            r.message()
        );
    }
    // A terminal key is a P0/B block named tpk.
    let r = import(
        &mut so,
        "tpk.b",
        &wrapped("D0000P0TB00E0000", RETAIL),
        Some("tpk"),
    );
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    // What export writes, import takes back as the same kind, for every exportable kind.
    for (id, kind) in [
        ("zpk.example", "zpk"),
        ("pvk.example", "pvk"),
        ("cvk.example", "cvk"),
        ("mac.example.cmac", "mac"),
        ("mac.example.hmac", "mac"),
        ("transport.example", "transport"),
        ("pin-delivery.example", "pin-delivery"),
    ] {
        let block = so
            .call(Opcode::KeyExport, |w| {
                w.str(Tag::Key, id).str(Tag::Kek, "kek.example");
            })
            .str(Tag::KeyBlock);
        assert!(block.ends_with(&block[block.len() - 8..]));
        assert_eq!(
            &block[11..12],
            "N",
            "{id}: exported blocks are not exportable again"
        );
        let back = format!("{id}.back");
        let r = import(&mut so, &back, &block, None);
        assert_eq!(r.status(), Status::Ok, "{id}: {}", r.message());
        assert!(
            list(&mut so).contains(&format!("{back} v1 {kind} ")),
            "{id}"
        );
    }
}

/// The MAC length mac.verify accepts is a property of the key; failures are counted
/// per key id.
#[test]
fn mac_lengths_are_the_keys_and_failures_are_counted_per_key() {
    let d = Daemon::start("keys-admin-mac");
    let mut so = d.connect("security-officer-1");
    let r = so.call(Opcode::KeyImport, |w| {
        w.str(Tag::Key, "mac.iso8583")
            .str(Tag::Kek, "kek.example")
            .str(Tag::KeyBlock, &wrapped("D0000M3TC00E0000", RETAIL))
            .u8(Tag::MacMinLength, 4);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let listing = so.call(Opcode::KeyList, |_| {}).str(Tag::Listing);
    assert!(listing.contains("mac.iso8583 v1 mac tdes active kcv=08D7B4 exportable=true"));
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("mac.iso8583 v1") && l.ends_with(" mac_min_length=4"))
    );
    // Rotation keeps it.
    so.call(Opcode::KeyRotate, |w| {
        w.str(Tag::Key, "mac.iso8583");
    });
    let mut c = d.connect("issuing-host-1");
    let data = b"0200 cofre";
    let full = cofre::crypto::mac::retail_mac(&ClearKey::from_hex(RETAIL).unwrap(), data).unwrap();
    let verify = |c: &mut Raw, key: &str, mac: &[u8]| {
        c.call(Opcode::MacVerify, |w| {
            w.str(Tag::Key, key)
                .bytes(Tag::Data, data)
                .bytes(Tag::Mac, mac);
        })
    };
    // v1 (now verify-only) verifies prefixes of 4 to 8 bytes; 3 and 9 are malformed.
    for n in 4..=8 {
        let r = verify(&mut c, "mac.iso8583", &full[..n]);
        assert_eq!(r.status(), Status::Ok, "{n}: {}", r.message());
        assert_eq!(r.u32(Tag::KeyVersion), 1);
    }
    for bad in [&full[..3], &[full.as_slice(), &[0]].concat()[..]] {
        let r = verify(&mut c, "mac.iso8583", bad);
        assert_eq!(r.status(), Status::MalformedField);
        assert_eq!(field(&r), Some(Tag::Mac.code()));
    }
    // The full-length key accepts only 8 bytes.
    assert_eq!(
        verify(&mut c, "mac.example.retail", &full).status(),
        Status::Ok
    );
    let r = verify(&mut c, "mac.example.retail", &full[..4]);
    assert_eq!(
        (r.status(), field(&r)),
        (Status::MalformedField, Some(Tag::Mac.code()))
    );
    // Failures: counted per key id, and only failures.
    let mut wrong = full[..4].to_vec();
    wrong[3] ^= 1;
    for _ in 0..3 {
        assert_eq!(
            verify(&mut c, "mac.iso8583", &wrong).status(),
            Status::VerificationFailed
        );
    }
    let mut wrong8 = full.to_vec();
    wrong8[7] ^= 1;
    assert_eq!(
        verify(&mut c, "mac.example.retail", &wrong8).status(),
        Status::VerificationFailed
    );
    let m = d.metrics_text();
    assert!(
        m.contains(r#"cofre_mac_verification_failures_total{key="mac.iso8583"} 3"#),
        "{m}"
    );
    assert!(m.contains(r#"cofre_mac_verification_failures_total{key="mac.example.retail"} 1"#));
    assert!(!m.contains(RETAIL));
}

/// A 16-byte dCVV2 key (protocol/dcvv2.md vector 1) generates and verifies.
#[test]
fn sixteen_byte_dcvv2_keys_work() {
    let d = Daemon::start("keys-admin-dcvv2");
    let mut so = d.connect("security-officer-1");
    let r = so.call(Opcode::KeyImport, |w| {
        w.str(Tag::Key, "dcvv2.sixteen")
            .str(Tag::Kek, "kek.example")
            .str(
                Tag::KeyBlock,
                &wrapped("D000010HC00N0000", "000102030405060708090A0B0C0D0E0F"),
            );
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let r = so.call(Opcode::KeyGenerate, |w| {
        w.str(Tag::Key, "dcvv2.random16")
            .str(Tag::Kind, "dcvv2")
            .u8(Tag::KeyLength, 16);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let mut c = d.connect("issuing-host-1");
    let gen_ = |c: &mut Raw, key: &str, counter: u64| {
        c.call(Opcode::Dcvv2Generate, |w| {
            w.str(Tag::Pan, "4111111111111111")
                .str(Tag::Key, key)
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, counter);
        })
    };
    assert_eq!(gen_(&mut c, "dcvv2.sixteen", 0).str(Tag::Dcvv2), "184");
    let code = gen_(&mut c, "dcvv2.random16", 3).str(Tag::Dcvv2);
    let r = c.call(Opcode::Dcvv2Verify, |w| {
        w.str(Tag::Pan, "4111111111111111")
            .str(Tag::Key, "dcvv2.random16")
            .str(Tag::Expiry, "2812")
            .u64(Tag::Counter, 3)
            .str(Tag::Dcvv2, &code);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
}

/// Every ok answer about a card named by token names the token key version; by PAN,
/// it does not.
#[test]
fn answers_about_a_token_name_its_version() {
    let d = Daemon::start("token-version");
    let mut c = d.connect("issuing-host-1");
    let pan = "4111111111111111";
    let token = c
        .call(Opcode::Tokenise, |w| {
            w.str(Tag::Pan, pan);
        })
        .str(Tag::Token);
    let blob = c
        .call(Opcode::PinGenerate, |w| {
            w.str(Tag::Pan, pan).str(Tag::Pvk, "pvk.example");
        })
        .bytes(Tag::PinBlob);
    let card_ops: Vec<(Opcode, Body)> = vec![
        (
            Opcode::CvvGenerate,
            Box::new(|w| {
                w.str(Tag::Key, "cvk.example")
                    .str(Tag::Expiry, "2812")
                    .str(Tag::ServiceCode, "201");
            }),
        ),
        (
            Opcode::SecurityCodesExport,
            Box::new(|w| {
                w.str(Tag::Key, "cvk.example")
                    .str(Tag::Expiry, "2812")
                    .str(Tag::ServiceCode, "201")
                    .str(Tag::TransportKey, "transport.example");
            }),
        ),
        (
            Opcode::Dcvv2Generate,
            Box::new(|w| {
                w.str(Tag::Key, "dcvv2.example")
                    .str(Tag::Expiry, "2812")
                    .u64(Tag::Counter, 5);
            }),
        ),
        (
            Opcode::PinGenerate,
            Box::new(|w| {
                w.str(Tag::Pvk, "pvk.example");
            }),
        ),
        (
            Opcode::PinDeliver,
            Box::new(move |w| {
                w.bytes(Tag::PinBlob, &blob)
                    .str(Tag::DeliveryKey, "pin-delivery.example");
            }),
        ),
        (Opcode::PinAttempts, Box::new(|_| {})),
        (Opcode::PinAttemptsReset, Box::new(|_| {})),
        (Opcode::Dcvv2Enable, Box::new(|_| {})),
        (Opcode::Dcvv2State, Box::new(|_| {})),
        (Opcode::Dcvv2Disable, Box::new(|_| {})),
    ];
    for (op, body) in &card_ops {
        let by_token = c.call(*op, |w| {
            w.str(Tag::Token, &token);
            body(w);
        });
        assert_eq!(
            by_token.status(),
            Status::Ok,
            "{op}: {}",
            by_token.message()
        );
        assert_eq!(
            by_token.fields().u32(Tag::TokenVersion).unwrap(),
            Some(1),
            "{op}"
        );
        let by_pan = c.call(*op, |w| {
            w.str(Tag::Pan, pan);
            body(w);
        });
        assert_eq!(by_pan.status(), Status::Ok, "{op}: {}", by_pan.message());
        assert_eq!(
            by_pan.fields().u32(Tag::TokenVersion).unwrap(),
            None,
            "{op}"
        );
    }
}
