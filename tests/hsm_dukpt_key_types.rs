//! AES DUKPT PIN working keys of every size through the live daemon (protocol/README.md,
//! "DUKPT input", `pin_key_type`): the X9.24-3-2017 AES-256 PIN key's block verifies and
//! translates when the request names AES-256 and not otherwise; every refusal of the
//! field answers its status without counting a try; the answers are counted and the log
//! shows no key or PIN; the client library and `cofre client` send the field. The
//! differential test against the independent AES DUKPT reference, over every PIN key
//! size, is in tests/hsm_dukpt_refusals.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;
#[path = "daemon/dukpt_terminal.rs"]
mod dukpt_terminal;

use cofre::crypto::Pin;
use cofre::crypto::cipher::BlockCipher;
use cofre::crypto::dukpt::Ksn;
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{self, Format};
use cofre::protocol::{Opcode, Status, Tag};
use daemon::Resp;
use dukpt_terminal::*;

#[test]
fn the_published_aes256_pin_key_block_needs_its_key_type() {
    // The block is the published AES-256 PIN key's own format 4 block (checked here with
    // a plain AES format 4 encipherment under that key, no DUKPT code involved).
    let by_hand = pinblock::encipher_with_fill(
        Format::Iso4,
        &BlockCipher::aes(&hex::decode(AES256_PIN_KEY).unwrap()).unwrap(),
        &Pin::new("1234").unwrap(),
        Some(&Pan::new(AES_PAN).unwrap()),
        &AES_FILL,
    )
    .unwrap();
    assert_eq!(by_hand.to_hex(), AES256_BLOCK);

    let d = key_types_daemon("dukpt-key-types");
    let mut c = d.connect("issuing-host-1");
    let ksn = hex::decode(AES_KSN).unwrap();
    let block = hex::decode(AES256_BLOCK).unwrap();
    let r = verify_typed(&mut c, ("bdk.aes256", &ksn), Some(4), (4, &block), AES_PAN);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    assert_eq!((r.u32(Tag::KeyVersion), r.u32(Tag::PvkVersion)), (1, 1));
    let r = translate_typed(&mut c, ("bdk.aes256", &ksn), Some(4), &block, AES_PAN);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    assert_eq!(r.bytes(Tag::PinBlock), iso0_under_zpk("1234", AES_PAN));
    // Without the field the PIN key is AES-128 (the published 09C9C432966811D6B2C3336BAC1B1202
    // for this BDK and counter), which does not decode the block; nor does AES-192.
    for key_type in [None, Some(2), Some(3)] {
        let r = verify_typed(&mut c, ("bdk.aes256", &ksn), key_type, (4, &block), AES_PAN);
        assert_eq!(r.status(), Status::InvalidPinBlock, "{key_type:?}");
    }
    // The published AES-128 block of the AES-128 BDK: the same with and without `2`.
    let aes128 = hex::decode(AES_BLOCK).unwrap();
    for key_type in [None, Some(2)] {
        let r = verify_typed(&mut c, ("bdk.aes", &ksn), key_type, (4, &aes128), AES_PAN);
        assert_eq!(r.status(), Status::Ok, "{key_type:?}: {}", r.message());
    }
    // An AES-192 PIN key from the AES-192 BDK and from the AES-256 BDK.
    let first = Ksn::from_hex(AES_KSN).unwrap();
    for (id, bdk) in [("bdk.aes192", AES192_BDK), ("bdk.aes256", AES256_BDK)] {
        let block = aes_block_of(
            bdk,
            &first,
            cofre::crypto::dukpt::KeyType::Aes192,
            "1234",
            AES_PAN,
        );
        let r = verify_typed(&mut c, (id, &ksn), Some(3), (4, &block), AES_PAN);
        assert_eq!(r.status(), Status::Ok, "{id}: {}", r.message());
    }
}

#[test]
fn pin_key_type_refusals_answer_their_status_and_count_no_try() {
    let d = key_types_daemon("dukpt-key-type-refusals");
    let mut c = d.connect("issuing-host-1");
    let aes = hex::decode(AES_KSN).unwrap();
    let tdes = hex::decode(TDES_KSN).unwrap();
    let block16 = hex::decode(AES256_BLOCK).unwrap();
    let block8 = hex::decode(TDES_BLOCK).unwrap();

    // Stronger than the BDK (X9.24-3-2017 6.3).
    for (bdk, key_type) in [("bdk.aes", 3), ("bdk.aes", 4), ("bdk.aes192", 4)] {
        for r in [
            verify_typed(&mut c, (bdk, &aes), Some(key_type), (4, &block16), AES_PAN),
            translate_typed(&mut c, (bdk, &aes), Some(key_type), &block16, AES_PAN),
        ] {
            assert_eq!(
                (r.status(), reason(&r)),
                (Status::WrongKeyUsage, "pin_key_type_too_strong".to_owned()),
                "{bdk} {key_type}"
            );
        }
    }
    // Not an AES PIN key type, with a TDES KSN, without a KSN.
    let malformed = |r: Resp, what: &str| {
        assert_eq!(
            (r.status(), field(&r)),
            (Status::MalformedField, Some(Tag::PinKeyType.code())),
            "{what}: {}",
            r.message()
        );
    };
    for key_type in [0, 1, 5, 0x80, 0xFF] {
        malformed(
            verify_typed(
                &mut c,
                ("bdk.aes256", &aes),
                Some(key_type),
                (4, &block16),
                AES_PAN,
            ),
            &format!("type {key_type}"),
        );
    }
    malformed(
        verify_typed(&mut c, ("bdk.x924", &tdes), Some(2), (0, &block8), TDES_PAN),
        "TDES KSN",
    );
    let r = c.call(Opcode::PinVerify, |w| {
        w.str(Tag::Pan, AES_PAN)
            .str(Tag::Key, "zpk.example.aes")
            .u8(Tag::PinKeyType, 4)
            .u8(Tag::Format, 4)
            .bytes(Tag::PinBlock, &block16)
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv_of("1234", AES_PAN));
    });
    malformed(r, "no KSN");
    // The wrong field length (two bytes for a u8) is malformed too, never a panic: the
    // frame is built by hand, as no writer makes it.
    let mut frame = Vec::new();
    cofre::protocol::encode_request(&mut frame, Opcode::PinVerify.code(), 77, |w| {
        w.str(Tag::Pan, AES_PAN)
            .str(Tag::Key, "bdk.aes256")
            .bytes(Tag::Ksn, &aes)
            .u8(Tag::Format, 4)
            .bytes(Tag::PinBlock, &block16)
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv_of("1234", AES_PAN));
    })
    .unwrap();
    frame.extend_from_slice(&[Tag::PinKeyType.code(), 0x00, 0x02, 0x00, 0x04]);
    let body_len = u32::try_from(frame.len() - 4).unwrap();
    frame[..4].copy_from_slice(&body_len.to_be_bytes());
    c.send_bytes(&frame);
    let r = c.read().expect("an answer");
    malformed(r, "two bytes");
    // pin.change does not take DUKPT input, so not the field either.
    let r = c.call(Opcode::PinChange, |w| {
        w.str(Tag::Pan, AES_PAN)
            .str(Tag::Key, "zpk.example.aes")
            .u8(Tag::PinKeyType, 2)
            .u8(Tag::Format, 4)
            .bytes(Tag::PinBlock, &block16)
            .bytes(Tag::NewPinBlock, &block16)
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv_of("1234", AES_PAN));
    });
    malformed(r, "pin.change");

    // None counted a try, and the connection still answers.
    let r = c.call(Opcode::PinAttempts, |w| {
        w.str(Tag::Pan, AES_PAN);
    });
    assert_eq!(r.u32(Tag::Attempts), 0);
    let r = verify_typed(
        &mut c,
        ("bdk.aes256", &aes),
        Some(4),
        (4, &block16),
        AES_PAN,
    );
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
}

/// The client library names the PIN key type for pin.verify and pin.translate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_library_sends_pin_key_type() {
    use cofre::client::{Card, ClientError, DukptPinBlock, PinTranslateRequest, Verification};
    let d = key_types_daemon("dukpt-key-types-client");
    let (client, reference) = issuing_host_client(&d, AES_PAN).await;
    let card = Card::Pan(AES_PAN.into());
    let mut block = DukptPinBlock {
        bdk: "bdk.aes256".into(),
        ksn: hex::decode(AES_KSN).unwrap(),
        pin_key_type: Some(4),
        format: 4,
        pin_block: hex::decode(AES256_BLOCK).unwrap(),
    };
    let shown = format!("{block:?}");
    assert!(
        shown.contains("Some(4)") && !shown.contains(AES256_BLOCK),
        "{shown}"
    );
    let v = client
        .pin_verify_dukpt(&card, &block, "pvk.example", &reference)
        .await
        .unwrap();
    assert_eq!(
        v,
        Verification::Verified {
            key_version: Some(1)
        }
    );
    block.bdk = "bdk.aes192".into();
    match client
        .pin_verify_dukpt(&card, &block, "pvk.example", &reference)
        .await
    {
        Err(ClientError::Status { status, .. }) => assert_eq!(status, Status::WrongKeyUsage),
        other => panic!("{other:?}"),
    }
    let req = PinTranslateRequest {
        card: card.clone(),
        key: "bdk.aes256".into(),
        format: 4,
        pin_block: hex::decode(AES256_BLOCK).unwrap(),
        dest_key: "zpk.example".into(),
        dest_format: 0,
        dest_pan: None,
    };
    let ksn = hex::decode(AES_KSN).unwrap();
    let out = client
        .pin_translate_dukpt_with_key_type(&req, &ksn, 4)
        .await
        .unwrap();
    assert_eq!(out, iso0_under_zpk("1234", AES_PAN));
    // Without the type the PIN key is AES-128, which does not decode this block.
    match client.pin_translate_dukpt(&req, &ksn).await {
        Err(ClientError::Status { status, .. }) => assert_eq!(status, Status::InvalidPinBlock),
        other => panic!("{other:?}"),
    }
}

/// `cofre client` reaches `pin_key_type` by its protocol name like any other field.
#[test]
fn the_command_line_client_takes_a_pin_key_type() {
    let d = key_types_daemon("dukpt-key-types-cli");
    let pvv = pvv_of("1234", AES_PAN);
    let run = |bdk: &str, key_type: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["client", "--address", &d.addr, "pin.verify"])
            .args(["--pan", AES_PAN, "--key", bdk, "--ksn", AES_KSN])
            .args(["--pin-key-type", key_type])
            .args(["--format", "4", "--pin-block", AES256_BLOCK])
            .args(["--pvk", "pvk.example", "--pvv", &pvv])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = run("bdk.aes256", "4");
    assert!(ok && out.starts_with("ok key_version=1"), "{out}");
    let (ok, out) = run("bdk.aes192", "4");
    assert!(!ok && out.contains("pin_key_type_too_strong"), "{out}");
}

/// Blocks under AES-192 and AES-256 PIN keys, a wrong PIN and the refusals of the field:
/// each answer counted in the request metrics, and the daemon's log shows no BDK, no
/// derived key and no PIN.
#[test]
fn the_log_shows_no_key_or_pin_of_any_aes_size() {
    let mut d = key_types_daemon("dukpt-key-types-secrecy");
    let mut c = d.connect("issuing-host-1");
    let aes = hex::decode(AES_KSN).unwrap();
    let first = Ksn::from_hex(AES_KSN).unwrap();
    let pin = "604137";
    let aes192 = cofre::crypto::dukpt::KeyType::Aes192;
    let wrong = aes_block_of(AES192_BDK, &first, aes192, pin, AES_PAN);
    let r = verify_typed(&mut c, ("bdk.aes192", &aes), Some(3), (4, &wrong), AES_PAN);
    assert_eq!(r.status(), Status::VerificationFailed);
    let block = hex::decode(AES256_BLOCK).unwrap();
    let r = verify_typed(&mut c, ("bdk.aes256", &aes), Some(4), (4, &block), AES_PAN);
    assert_eq!(r.status(), Status::Ok);
    let r = verify_typed(&mut c, ("bdk.aes192", &aes), Some(4), (4, &block), AES_PAN);
    assert_eq!(r.status(), Status::WrongKeyUsage);
    let r = verify_typed(&mut c, ("bdk.aes256", &aes), Some(9), (4, &block), AES_PAN);
    assert_eq!(r.status(), Status::MalformedField);
    let metrics = d.metrics_text();
    for status in [
        "ok",
        "verification_failed",
        "wrong_key_usage",
        "malformed_field",
    ] {
        let series = format!("operation=\"pin.verify\",status=\"{status}\"}} 1");
        assert!(metrics.contains(&series), "{series} in {metrics}");
    }
    drop(c);
    d.stop();
    let log = d.log_text();
    assert!(log.contains("key administration"), "{log}");
    // The AES-192 PIN keys of both BDKs at counter 1 (tests/dukpt_vectors_aes.rs).
    let aes192_pin_keys = [
        "C5043EDC7F2C001097974D40FF82A050B64A1AB27879F3DB",
        "DD73FB55862AB1CA815FF5CEE50E3135768D16805F5EC33A",
    ];
    for secret in [AES192_BDK, AES256_BDK, AES256_PIN_KEY]
        .into_iter()
        .chain(aes192_pin_keys)
    {
        assert!(leaks(&format!("x{secret}x"), secret), "positive control");
        assert!(!leaks(&log, secret), "{secret} in the log");
    }
    assert!(leaks(&format!("pin={pin}"), pin), "positive control");
    assert!(!log.contains(pin), "the PIN is in the log");
}
