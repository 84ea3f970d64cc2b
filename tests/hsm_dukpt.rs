//! PIN blocks from POS terminals under DUKPT, through the live daemon (protocol/README.md,
//! "DUKPT input"): the published X9.24-1 and X9.24-3 blocks verify and translate, a
//! wrong PIN counts toward the card's lockout exactly as under a zone key, the request
//! metrics count the answers, the daemon's log never shows the PIN, the BDK or a derived
//! key, and the client library sends DUKPT blocks. Refusals and the differential test
//! against the independent oracles are in tests/hsm_dukpt_refusals.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;
#[path = "daemon/dukpt_terminal.rs"]
mod dukpt_terminal;

use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{self, Format, PinBlock};
use cofre::protocol::{Opcode, Status, Tag};
use dukpt_terminal::*;

#[test]
fn published_dukpt_blocks_verify_and_translate() {
    let d = daemon("dukpt-published");
    let mut c = d.connect("issuing-host-1");
    let tdes_first = hex::decode(TDES_KSN).unwrap();
    let aes_first = hex::decode(AES_KSN).unwrap();
    let tdes_block = hex::decode(TDES_BLOCK).unwrap();
    let aes_block = hex::decode(AES_BLOCK).unwrap();

    let r = verify(&mut c, "bdk.x924", &tdes_first, 0, &tdes_block, TDES_PAN);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    assert_eq!((r.u32(Tag::KeyVersion), r.u32(Tag::PvkVersion)), (1, 1));
    let r = verify(&mut c, "bdk.aes", &aes_first, 4, &aes_block, AES_PAN);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());

    // The published AES block really is the PIN key's (the vector checks itself): a
    // plain AES format 4 decode under the published PIN key gives PIN 1234.
    let pin = pinblock::decipher(
        Format::Iso4,
        &cofre::crypto::cipher::BlockCipher::aes(&hex::decode(AES_PIN_KEY).unwrap()).unwrap(),
        &PinBlock::from_bytes(&aes_block).unwrap(),
        Some(&Pan::new(AES_PAN).unwrap()),
    )
    .unwrap();
    assert_eq!(pin.expose_secret(), "1234");

    // TDES DUKPT -> zpk.example, format 0: deterministic, so the answer is exactly the
    // format 0 block of PIN 1234 and PAN 4012345678909 under the ZPK, built by hand
    // (ISO 9564-1 format 0: 041234FFFFFFFFFF xor 0000 and the 12 PAN digits before the
    // check digit).
    let r = translate(
        &mut c,
        ("bdk.x924", &tdes_first),
        (0, &tdes_block),
        TDES_PAN,
        ("zpk.example", 0),
    );
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let expected = iso0_under_zpk("1234", TDES_PAN);
    assert_eq!(
        hex::encode_upper(r.bytes(Tag::PinBlock)),
        hex::encode_upper(expected)
    );
    assert_eq!((r.u32(Tag::KeyVersion), r.u32(Tag::DestKeyVersion)), (1, 1));

    // AES DUKPT -> zpk.example.aes, format 4 (random fill): the answer verifies under
    // the zone key as an ordinary format 4 block.
    let r = translate(
        &mut c,
        ("bdk.aes", &aes_first),
        (4, &aes_block),
        AES_PAN,
        ("zpk.example.aes", 4),
    );
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let out = r.bytes(Tag::PinBlock);
    let pin = pinblock::decipher(
        Format::Iso4,
        &cofre::crypto::cipher::BlockCipher::aes(&hex::decode(ZPK_AES).unwrap()).unwrap(),
        &PinBlock::from_bytes(&out).unwrap(),
        Some(&Pan::new(AES_PAN).unwrap()),
    )
    .unwrap();
    assert_eq!(pin.expose_secret(), "1234");

    // The PCI rules apply unchanged: nothing goes into format 1 from format 0.
    let r = translate(
        &mut c,
        ("bdk.x924", &tdes_first),
        (0, &tdes_block),
        TDES_PAN,
        ("zpk.example", 1),
    );
    assert_eq!(r.status(), Status::TranslationNotAllowed);

    // A later KSN of the same device: a fresh block made as the terminal makes it.
    for counter in [2, 0x400, 0x1F_F800] {
        let ksn = tdes_ksn(counter);
        let block = terminal_block(TDES_BDK, &ksn, Format::Iso3, "1234", TDES_PAN);
        let r = verify(&mut c, "bdk.x924", &ksn_bytes(&ksn), 3, &block, TDES_PAN);
        assert_eq!(
            r.status(),
            Status::Ok,
            "counter {counter:X}: {}",
            r.message()
        );
    }
    let ksn = aes_ksn(0xFFFF_0000);
    let block = terminal_block(AES_BDK, &ksn, Format::Iso4, "1234", AES_PAN);
    let r = verify(&mut c, "bdk.aes", &ksn_bytes(&ksn), 4, &block, AES_PAN);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());

    // After a rotation the published BDK is verify-only: terminals still on it keep
    // working, and the answer names version 1.
    let r = d
        .connect("security-officer-1")
        .call(Opcode::KeyRotate, |w| {
            w.str(Tag::Key, "bdk.x924");
        });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let mut c = d.connect("issuing-host-1");
    let r = verify(&mut c, "bdk.x924", &tdes_first, 0, &tdes_block, TDES_PAN);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    assert_eq!(r.u32(Tag::KeyVersion), 1);
}

#[test]
fn a_wrong_pin_under_dukpt_counts_and_locks_the_card_at_the_limit() {
    let d = daemon("dukpt-lockout");
    let mut c = d.connect("atm-switch-1");
    let mut host = d.connect("issuing-host-1");
    let pan = "4000001234567899";
    // atm-switch may not use BDKs (its keys are zpk.*, tpk.*, pvk.*): the role policy
    // applies to the BDK id like any key id.
    let ksn = tdes_ksn(5);
    let right = terminal_block(TDES_BDK, &ksn, Format::Iso0, "1234", pan);
    let r = verify(&mut c, "bdk.x924", &ksn_bytes(&ksn), 0, &right, pan);
    assert_eq!(r.status(), Status::NotAuthorised);

    // The example limit is 3 (keys-example/hsm.toml): two wrong PINs, one right one
    // (the count is cleared), three wrong ones (locked), then even the right PIN is
    // pin_locked.
    let mut counter = 6;
    let mut next_block = |pin: &str| {
        counter += 1;
        let ksn = tdes_ksn(counter);
        (
            ksn_bytes(&ksn),
            terminal_block(TDES_BDK, &ksn, Format::Iso0, pin, pan),
        )
    };
    let mut statuses = Vec::new();
    for pin in ["9999", "5555", "1234", "9999", "5555", "4444", "1234"] {
        let (ksn, block) = next_block(pin);
        statuses.push(verify(&mut host, "bdk.x924", &ksn, 0, &block, pan).status());
    }
    use Status::{Ok, PinLocked, VerificationFailed as Failed};
    assert_eq!(
        statuses,
        [Failed, Failed, Ok, Failed, Failed, Failed, PinLocked]
    );
    let r = host.call(Opcode::PinAttempts, |w| {
        w.str(Tag::Pan, pan);
    });
    assert_eq!(r.u32(Tag::Attempts), 3);
    assert!(r.fields().bool(Tag::Locked).unwrap().unwrap());
    // A zone-key block of the same card is locked out too: one counter per card.
    let r = host.call(Opcode::PinVerify, |w| {
        w.str(Tag::Pan, pan)
            .str(Tag::Key, "zpk.example")
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &daemon::iso0_block(pan, "1234"))
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv_of("1234", pan));
    });
    assert_eq!(r.status(), Status::PinLocked);
}

#[test]
fn the_daemon_log_shows_no_pin_bdk_or_derived_key() {
    let mut d = daemon("dukpt-secrecy");
    let mut c = d.connect("issuing-host-1");
    let pin = "739152";
    let ksn = tdes_ksn(9);
    let block = terminal_block(TDES_BDK, &ksn, Format::Iso0, pin, TDES_PAN);
    let r = verify(&mut c, "bdk.x924", &ksn_bytes(&ksn), 0, &block, TDES_PAN);
    assert_eq!(r.status(), Status::VerificationFailed);
    let r = verify(
        &mut c,
        "bdk.x924",
        &ksn_bytes(&tdes_ksn(0x7FF)),
        0,
        &block,
        TDES_PAN,
    );
    assert_eq!(r.status(), Status::KsnRefused);
    let r = verify(
        &mut c,
        "bdk.x924",
        &hex::decode(TDES_KSN).unwrap(),
        0,
        &hex::decode(TDES_BLOCK).unwrap(),
        TDES_PAN,
    );
    assert_eq!(r.status(), Status::Ok);
    // Counted in the request metrics like any other answer.
    let metrics = d.metrics_text();
    for status in ["ok", "verification_failed", "ksn_refused"] {
        let series = format!("operation=\"pin.verify\",status=\"{status}\"}} 1");
        assert!(metrics.contains(&series), "{series} in {metrics}");
    }
    drop(c);
    d.stop();
    let log = d.log_text();
    // Positive controls: the log is the daemon's request log, and the detector finds
    // each secret where it is.
    assert!(log.contains("key administration"), "{log}");
    for secret in [TDES_BDK, TDES_IPEK, AES_BDK, AES_PIN_KEY] {
        assert!(leaks(&format!("x{secret}x"), secret), "positive control");
        assert!(leaks(&format!("x{}x", secret.to_lowercase()), secret));
        assert!(!leaks(&log, secret), "{secret} in the log");
    }
    assert!(leaks(&format!("pin={pin}"), pin), "positive control");
    assert!(!log.contains(pin), "the PIN is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_library_sends_dukpt_blocks() {
    use cofre::client::{Card, ClientError, DukptPinBlock, PinTranslateRequest, Verification};
    let d = daemon("dukpt-client");
    let (client, reference) = issuing_host_client(&d, TDES_PAN).await;
    let card = Card::Pan(TDES_PAN.into());
    let mut block = DukptPinBlock {
        bdk: "bdk.x924".into(),
        ksn: hex::decode(TDES_KSN).unwrap(),
        pin_key_type: None,
        format: 0,
        pin_block: hex::decode(TDES_BLOCK).unwrap(),
    };
    let shown = format!("{block:?}");
    assert!(
        shown.contains(TDES_KSN) && !shown.contains(TDES_BLOCK),
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
    block.ksn = ksn_bytes(&tdes_ksn(0x1F_FFFF));
    match client
        .pin_verify_dukpt(&card, &block, "pvk.example", &reference)
        .await
    {
        Err(ClientError::Status { status, .. }) => assert_eq!(status, Status::KsnRefused),
        other => panic!("{other:?}"),
    }
    let req = PinTranslateRequest {
        card: card.clone(),
        key: "bdk.x924".into(),
        format: 0,
        pin_block: hex::decode(TDES_BLOCK).unwrap(),
        dest_key: "zpk.example".into(),
        dest_format: 0,
        dest_pan: None,
    };
    let out = client
        .pin_translate_dukpt(&req, &hex::decode(TDES_KSN).unwrap())
        .await
        .unwrap();
    let v = client
        .pin_verify(&card, "zpk.example", 0, &out, "pvk.example", &reference)
        .await
        .unwrap();
    assert!(matches!(v, Verification::Verified { .. }));
}

/// `cofre client` reaches the new field by its protocol name like any other.
#[test]
fn the_command_line_client_takes_a_ksn() {
    let d = daemon("dukpt-cli");
    let pvv = pvv_of("1234", TDES_PAN);
    let run = |ksn: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["client", "--address", &d.addr, "pin.verify"])
            .args(["--pan", TDES_PAN, "--key", "bdk.x924", "--ksn", ksn])
            .args(["--format", "0", "--pin-block", TDES_BLOCK])
            .args(["--pvk", "pvk.example", "--pvv", &pvv])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = run(TDES_KSN);
    assert!(ok && out.starts_with("ok key_version=1"), "{out}");
    let (ok, out) = run("FFFF9876543210FFFFFF");
    assert!(!ok && out.contains("ksn_refused"), "{out}");
}
