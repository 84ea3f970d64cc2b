//! The daemon operations the REST facade's card life cycle needs, over real mutual TLS
//! with the example keys: dCVV2 under a transport key, a PIN carried over to a new PAN,
//! the weak-PIN policy, and PIN delivery under a key of its own. Expected values are
//! computed here with the crypto core on the clear keys of keys-example/README.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use cofre::crypto::cipher::BlockCipher;
use cofre::crypto::{ClearKey, dcvv2};
use cofre::protocol::{Opcode, Status, Tag};
use daemon::{Daemon, Raw};

const PAN: &str = "4111111111111111";
const TRANSPORT: &str = "11111111111111112222222222222222";
const DCVV2_KEY: &str = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";

fn tdes(hex: &str) -> BlockCipher {
    BlockCipher::tdes(&hex::decode(hex).unwrap()).unwrap()
}

/// Deciphers an 8-byte code block under a TDES key: the clear block's hex.
fn clear_block(key: &str, block: &[u8]) -> String {
    let mut b = block.to_vec();
    tdes(key).decrypt_ecb(&mut b).unwrap();
    hex::encode_upper(b)
}

fn dcvv2_under(c: &mut Raw, transport: &str, counter: u64) -> daemon::Resp {
    c.call(Opcode::Dcvv2Generate, |w| {
        w.str(Tag::Pan, PAN)
            .str(Tag::Key, "dcvv2.example")
            .str(Tag::Expiry, "2812")
            .u64(Tag::Counter, counter)
            .str(Tag::TransportKey, transport);
    })
}

/// dcvv2.generate with a transport key: one code block, never the clear code.
#[test]
fn dcvv2_under_the_transport_key() {
    let d = Daemon::start("dcvv2-transport");
    let key = ClearKey::from_hex(DCVV2_KEY).unwrap();
    for identity in ["issuing-host-1", "facade-1"] {
        let mut c = d.connect(identity);
        let r1 = dcvv2_under(&mut c, "transport.example", 42);
        assert_eq!(r1.status(), Status::Ok, "{}", r1.message());
        let fields: Vec<&str> = r1.fields().iter().map(|(t, _)| t.name()).collect();
        assert_eq!(
            fields,
            [
                "encrypted",
                "moving_factor",
                "key_version",
                "transport_key_version"
            ]
        );
        assert_eq!(r1.u32(Tag::TransportKeyVersion), 1);
        let block = r1.bytes(Tag::Encrypted);
        assert_eq!(block.len(), 8);
        let code = dcvv2::dcvv2(&key, PAN, "2812", 42).unwrap();
        let clear = clear_block(TRANSPORT, &block);
        assert_eq!(&clear[..2], "13", "{clear}");
        assert_eq!(&clear[2..5], code.expose_secret());
        // The fill is random: the same code never gives the same block twice.
        let r2 = dcvv2_under(&mut c, "transport.example", 42);
        assert_ne!(r2.bytes(Tag::Encrypted), block);
        assert_eq!(
            &clear_block(TRANSPORT, &r2.bytes(Tag::Encrypted))[..5],
            &clear[..5]
        );
    }
    let mut c = d.connect("issuing-host-1");
    // The processor's blocks are 8 bytes: an AES transport key is refused, and a key
    // of another kind is a wrong usage.
    for key in ["transport.example.aes", "cvk.example"] {
        let r = dcvv2_under(&mut c, key, 1);
        assert_eq!(r.status(), Status::WrongKeyUsage, "{key}: {}", r.message());
    }
    let r = dcvv2_under(&mut c, "transport.none", 1);
    assert_eq!(r.status(), Status::UnknownKey);
    // A role may only name transport keys its policy lists.
    let r = dcvv2_under(&mut d.connect("atm-switch-1"), "transport.example", 1);
    assert_eq!(r.status(), Status::NotAuthorised);
    let log = d.log_text();
    assert!(!log.contains(PAN) && !log.contains(TRANSPORT));
}

const PVK: &str = "0123456789ABCDEFFEDCBA9876543210";

fn pan(p: &str) -> cofre::crypto::pan::Pan {
    cofre::crypto::pan::Pan::new(p).unwrap()
}

fn pvk() -> cofre::crypto::pvv::Pvk {
    cofre::crypto::pvv::Pvk::new(&ClearKey::from_hex(PVK).unwrap()).unwrap()
}

fn pvv_of(pin: &str, card: &str) -> String {
    cofre::crypto::pvv::visa_pvv(
        &pvk(),
        1,
        &cofre::crypto::Pin::new(pin).unwrap(),
        &pan(card),
    )
    .unwrap()
    .to_string()
}

/// The clear PIN of a delivery block (format 0 under transport.example).
fn delivered_pin(block: &[u8], card: &str) -> String {
    let b = cofre::crypto::pinblock::PinBlock::from_bytes(block).unwrap();
    cofre::crypto::pinblock::decipher(
        cofre::crypto::pinblock::Format::Iso0,
        &tdes(TRANSPORT),
        &b,
        Some(&pan(card)),
    )
    .unwrap()
    .expose_secret()
    .to_owned()
}

fn deliver(c: &mut Raw, card: &str, blob: &[u8]) -> daemon::Resp {
    c.call(Opcode::PinDeliver, |w| {
        w.str(Tag::Pan, card)
            .bytes(Tag::PinBlob, blob)
            .str(Tag::DeliveryKey, "transport.example");
    })
}

/// pin.rebind: the old card's PIN, from its blob, becomes the new card's, with a
/// reference and a blob of the new card; the new card's tries start from zero.
#[test]
fn a_pin_carried_over_to_a_new_card() {
    let d = Daemon::start("rebind");
    let mut c = d.connect("facade-1");
    let (old, new) = ("4000001234567899", "4000009876543219");
    // The old card's PIN: 12 digits, so that a grep of the log for it means something.
    let r = c.call(Opcode::PinGenerate, |w| {
        w.str(Tag::Pan, old)
            .str(Tag::Pvk, "pvk.example")
            .u8(Tag::PinLength, 12)
            .str(Tag::DeliveryKey, "transport.example");
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let pin = delivered_pin(&r.bytes(Tag::DeliveryBlock), old);
    let blob = r.bytes(Tag::PinBlob);
    // The new card is locked (wrong PINs) before the reissue.
    let wrong = daemon::iso0_block(new, "0000");
    for _ in 0..3 {
        let r = c.call(Opcode::PinVerify, |w| {
            w.str(Tag::Pan, new)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &wrong)
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, "1234");
        });
        assert_eq!(r.status(), Status::VerificationFailed);
    }
    let rebind = |c: &mut Raw, from: &str, to: &str, blob: &[u8]| {
        c.call(Opcode::PinRebind, |w| {
            w.str(Tag::Pan, from)
                .bytes(Tag::PinBlob, blob)
                .str(Tag::NewPan, to)
                .str(Tag::Pvk, "pvk.example");
        })
    };
    let r = rebind(&mut c, old, new, &blob);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    assert_eq!(r.str(Tag::Pvv), pvv_of(&pin, new));
    assert_eq!(r.u32(Tag::PvkVersion), 1);
    let new_blob = r.bytes(Tag::PinBlob);
    assert_eq!(new_blob.len(), 25);
    // The new blob is the new card's, the PIN the same; it opens for no other card.
    let again = deliver(&mut c, new, &new_blob);
    assert_eq!(again.status(), Status::Ok, "{}", again.message());
    assert_eq!(delivered_pin(&again.bytes(Tag::DeliveryBlock), new), pin);
    assert_eq!(
        deliver(&mut c, old, &new_blob).status(),
        Status::InvalidBlob
    );
    // The new card's tries start from zero; the right PIN verifies.
    let r = c.call(Opcode::PinAttempts, |w| {
        w.str(Tag::Pan, new);
    });
    assert_eq!(
        (r.u32(Tag::Attempts), r.fields().bool(Tag::Locked).unwrap()),
        (0, Some(false))
    );
    let r = c.call(Opcode::PinVerify, |w| {
        w.str(Tag::Pan, new)
            .str(Tag::Key, "zpk.example")
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &daemon::iso0_block(new, &pin))
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv_of(&pin, new));
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());

    // By tokens, with an IBM 3624 offset for the new card.
    let token = |c: &mut Raw, p: &str| {
        c.call(Opcode::Tokenise, |w| {
            w.str(Tag::Pan, p);
        })
        .str(Tag::Token)
    };
    let (old_token, third) = (token(&mut c, new), "4000005555555557");
    let third_token = token(&mut c, third);
    let r = c.call(Opcode::PinRebind, |w| {
        w.str(Tag::Token, &old_token)
            .bytes(Tag::PinBlob, &new_blob)
            .str(Tag::NewToken, &third_token)
            .str(Tag::Pvk, "pvk.example")
            .u8(Tag::Method, 1);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let params = cofre::crypto::pvv::Ibm3624Params::default_for(&pan(third));
    let offset = cofre::crypto::pvv::ibm3624_offset(
        &pvk(),
        &cofre::crypto::Pin::new(&pin).unwrap(),
        &pan(third),
        &params,
    )
    .unwrap();
    assert_eq!(r.str(Tag::Offset), offset.to_string());

    // Refusals: a blob of another card, the same card twice, no new card, both forms.
    assert_eq!(
        rebind(&mut c, new, third, &blob).status(),
        Status::InvalidBlob
    );
    let r = rebind(&mut c, old, old, &blob);
    assert_eq!(r.status(), Status::MalformedField);
    assert_eq!(r.fields().u8(Tag::Field).unwrap(), Some(Tag::NewPan.code()));
    let r = c.call(Opcode::PinRebind, |w| {
        w.str(Tag::Pan, old)
            .bytes(Tag::PinBlob, &blob)
            .str(Tag::Pvk, "pvk.example");
    });
    assert_eq!(r.status(), Status::MalformedField);
    assert_eq!(r.fields().u8(Tag::Field).unwrap(), Some(Tag::NewPan.code()));
    let r = c.call(Opcode::PinRebind, |w| {
        w.str(Tag::Pan, old)
            .bytes(Tag::PinBlob, &blob)
            .str(Tag::NewPan, new)
            .str(Tag::NewToken, &third_token)
            .str(Tag::Pvk, "pvk.example");
    });
    assert_eq!(r.status(), Status::MalformedField);
    // Only roles that may generate PINs may carry one over.
    let r = rebind(&mut d.connect("atm-switch-1"), old, new, &blob);
    assert_eq!(r.status(), Status::NotAuthorised);

    let log = d.log_text();
    for secret in [old, new, third, pin.as_str(), &hex::encode_upper(&blob)] {
        assert!(!log.contains(secret), "the log leaks a secret");
    }
}

fn change(
    c: &mut Raw,
    card: &str,
    pvv: &str,
    old: &str,
    new: &str,
    weak_digits: Option<&str>,
) -> daemon::Resp {
    c.call(Opcode::PinChange, |w| {
        w.str(Tag::Pan, card)
            .str(Tag::Key, "zpk.example")
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &daemon::iso0_block(card, old))
            .bytes(Tag::NewPinBlock, &daemon::iso0_block(card, new))
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, pvv);
        if let Some(d) = weak_digits {
            w.str(Tag::WeakDigits, d);
        }
    })
}

fn attempts(c: &mut Raw, card: &str) -> u32 {
    c.call(Opcode::PinAttempts, |w| {
        w.str(Tag::Pan, card);
    })
    .u32(Tag::Attempts)
}

/// pin.change refuses a weak new PIN (each rule named), only once the old PIN is
/// proven, without counting a try; pin.generate never draws one.
#[test]
fn weak_pins_are_refused() {
    // Every rule on, as by default (the example set leaves sequences off for now).
    let d = Daemon::start_in(daemon::scratch_with(
        "weak-pins",
        &[("sequences = false", "sequences = true")],
    ));
    let mut c = d.connect("facade-1");
    let card = "4000001234567899";
    let (pin, pvv) = ("5831", pvv_of("5831", card));
    let dates = Some("1503,0315,1987,150387");
    for (new, rule) in [
        ("5831", "current"),
        ("1111", "repeated"),
        ("8901", "sequence"),
        ("3210", "sequence"),
        ("2580", "excluded"),
        ("0315", "caller_digits"),
        ("150387", "caller_digits"),
    ] {
        let r = change(&mut c, card, &pvv, pin, new, dates);
        assert_eq!(r.status(), Status::WeakPin, "{new}: {}", r.message());
        assert_eq!(
            r.fields().str(Tag::Reason).unwrap(),
            Some(rule),
            "{new}: {}",
            r.message()
        );
        assert!(r.message().contains(rule));
    }
    // A wrong old PIN is a counted failure, whatever the new PIN: the policy is no
    // oracle for a caller without the card's PIN.
    let r = change(&mut c, card, &pvv, "0000", "0315", dates);
    assert_eq!(r.status(), Status::VerificationFailed);
    assert_eq!(attempts(&mut c, card), 1);
    // A weak answer leaves the tries as they were.
    let r = change(&mut c, card, &pvv, pin, "1234", None);
    assert_eq!(r.status(), Status::WeakPin);
    assert_eq!(attempts(&mut c, card), 1);
    // Malformed weak_digits are named.
    for bad in ["15,03", "1503,", "1,2,3,4,5,6,7,8,9", "1503;0315"] {
        let r = change(&mut c, card, &pvv, pin, "2468", Some(bad));
        assert_eq!(r.status(), Status::MalformedField, "{bad}");
        assert_eq!(
            r.fields().u8(Tag::Field).unwrap(),
            Some(Tag::WeakDigits.code())
        );
    }
    // A good new PIN is changed; the success clears the failure.
    let r = change(&mut c, card, &pvv, pin, "2468", dates);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    assert_eq!(r.str(Tag::Pvv), pvv_of("2468", card));
    assert_eq!(attempts(&mut c, card), 0);
    let m = d.metrics_text();
    for (rule, n) in [("sequence", 3), ("caller_digits", 2), ("current", 1)] {
        assert!(
            m.contains(&format!("cofre_weak_pins_total{{rule=\"{rule}\"}} {n}")),
            "{rule}: {m}"
        );
    }

    // pin.generate never answers a weak PIN (checked on 300 draws of 4 digits, which
    // meet about one weak draw on average without the policy).
    let policy = cofre::hsm::HsmConfig::load(&d.dir.join("hsm.toml"))
        .unwrap()
        .pin_policy;
    let caller = cofre::hsm::pin_policy::CallerDigits::parse("1503,0315").unwrap();
    for _ in 0..300 {
        let r = c.call(Opcode::PinGenerate, |w| {
            w.str(Tag::Pan, card)
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::DeliveryKey, "transport.example")
                .str(Tag::WeakDigits, "1503,0315");
        });
        assert_eq!(r.status(), Status::Ok, "{}", r.message());
        let drawn = delivered_pin(&r.bytes(Tag::DeliveryBlock), card);
        assert_eq!(policy.weakness(&drawn, None, &caller), None, "{drawn}");
    }
}

/// With the policy off, weak PINs are accepted.
#[test]
fn the_weak_pin_policy_can_be_switched_off() {
    let d = Daemon::start_in(daemon::scratch_with(
        "weak-pins-off",
        &[(
            "[pin_policy]\nenabled = true",
            "[pin_policy]\nenabled = false",
        )],
    ));
    let mut c = d.connect("issuing-host-1");
    let card = "4000001234567899";
    let r = change(&mut c, card, &pvv_of("5831", card), "5831", "1111", None);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
}

const PIN_DELIVERY: &str = "5B5B5B5B5B5B5B5B6D6D6D6D6D6D6D6D";

/// PINs travel under a key kind of their own; a transport key delivers PINs only while
/// the migration switch allows it, and a PIN delivery key does nothing else.
#[test]
fn pins_are_delivered_under_a_key_of_their_own() {
    let card = "4000001234567899";
    let off = Daemon::start_in(daemon::scratch_with(
        "pin-delivery",
        &[(
            "pin_delivery_transport_keys = true",
            "pin_delivery_transport_keys = false",
        )],
    ));
    let mut c = off.connect("facade-1");
    let r = c.call(Opcode::PinGenerate, |w| {
        w.str(Tag::Pan, card)
            .str(Tag::Pvk, "pvk.example")
            .u8(Tag::PinLength, 12)
            .str(Tag::DeliveryKey, "pin-delivery.example");
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    assert_eq!(r.u32(Tag::TransportKeyVersion), 1);
    let clear = |block: &[u8]| {
        let b = cofre::crypto::pinblock::PinBlock::from_bytes(block).unwrap();
        cofre::crypto::pinblock::decipher(
            cofre::crypto::pinblock::Format::Iso0,
            &tdes(PIN_DELIVERY),
            &b,
            Some(&pan(card)),
        )
        .unwrap()
        .expose_secret()
        .to_owned()
    };
    let pin = clear(&r.bytes(Tag::DeliveryBlock));
    assert_eq!(r.str(Tag::Pvv), pvv_of(&pin, card));
    let blob = r.bytes(Tag::PinBlob);
    let deliver_under = |c: &mut Raw, key: &str| {
        c.call(Opcode::PinDeliver, |w| {
            w.str(Tag::Pan, card)
                .bytes(Tag::PinBlob, &blob)
                .str(Tag::DeliveryKey, key);
        })
    };
    let r = deliver_under(&mut c, "pin-delivery.example");
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    assert_eq!(clear(&r.bytes(Tag::DeliveryBlock)), pin);
    // Separation: no PIN under a transport key, no code or PAN under a PIN delivery key.
    assert_eq!(
        deliver_under(&mut c, "transport.example").status(),
        Status::WrongKeyUsage
    );
    assert_eq!(
        dcvv2_under(&mut c, "pin-delivery.example", 1).status(),
        Status::WrongKeyUsage
    );
    let r = c.call(Opcode::SecurityCodesExport, |w| {
        w.str(Tag::Pan, card)
            .str(Tag::Key, "cvk.example")
            .str(Tag::Expiry, "2812")
            .str(Tag::ServiceCode, "201")
            .str(Tag::TransportKey, "pin-delivery.example");
    });
    assert_eq!(r.status(), Status::WrongKeyUsage);
    let r = c.call(Opcode::PinVerify, |w| {
        w.str(Tag::Pan, card)
            .str(Tag::Key, "pin-delivery.example")
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &daemon::iso0_block(card, &pin))
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv_of(&pin, card));
    });
    assert_eq!(r.status(), Status::WrongKeyUsage);
    let r = off
        .connect("issuing-host-1")
        .call(Opcode::PanGenerate, |w| {
            w.str(Tag::Bin, "400000")
                .str(Tag::TransportKey, "pin-delivery.example");
        });
    assert_eq!(r.status(), Status::WrongKeyUsage);
    assert!(!off.log_text().contains(&pin));
    drop(off);

    // The example set keeps the switch on: a transport key still delivers.
    let on = Daemon::start("pin-delivery-migration");
    let r = deliver_under(&mut on.connect("facade-1"), "transport.example");
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    assert_eq!(delivered_pin(&r.bytes(Tag::DeliveryBlock), card), pin);
}
