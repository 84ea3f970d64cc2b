//! PIN blocks from POS terminals under DUKPT, through the live daemon (protocol/README.md,
//! "DUKPT input"): the published X9.24-1 and X9.24-3 blocks verify and translate, a
//! wrong PIN counts toward the card's lockout exactly as under a zone key, refused KSNs
//! and keys answer their status (never a panic, the connection keeps answering), and the
//! daemon's log never shows the PIN, the BDK or a derived key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use cofre::crypto::cipher::Algorithm;
use cofre::crypto::dukpt::{self, Bdk, Ksn};
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{self, Format, PinBlock};
use cofre::crypto::{ClearKey, Pin, pvv, tr31};
use cofre::protocol::{FieldsWriter, Opcode, Status, Tag};
use daemon::{Daemon, Raw, Resp};

const KEK: &str = "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6";
const PVK: &str = "0123456789ABCDEFFEDCBA9876543210";
const ZPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const ZPK_AES: &str = "00112233445566778899AABBCCDDEEFF";

// ANSI X9.24-1:2009 Annex A.4.1-A.4.2 (tests/vectors/published.md, "DUKPT"): BDK, the
// first KSN of the example device, and its format 0 block of PIN 1234, PAN 4012345678909.
const TDES_BDK: &str = "0123456789ABCDEFFEDCBA9876543210";
const TDES_IPEK: &str = "6AC292FAA1315B4D858AB3A3D7D5933A";
const TDES_KSN: &str = "FFFF9876543210E00001";
const TDES_PAN: &str = "4012345678909";
const TDES_BLOCK: &str = "1B9C1845EB993A7A";

// ANSI X9.24-3-2017 test vectors (supplement), AES-128 BDK, initial key ID
// 1234567890123456, counter 1: the format 4 block of PIN 1234, PAN 4111111111111111
// under the AES-128 PIN key AF8CB133A78F8DC2D1359F18527593FB.
const AES_BDK: &str = "FEDCBA9876543210F1F1F1F1F1F1F1F1";
const AES_PIN_KEY: &str = "AF8CB133A78F8DC2D1359F18527593FB";
const AES_KSN: &str = "123456789012345600000001";
const AES_PAN: &str = "4111111111111111";
const AES_BLOCK: &str = "A912150391AB65A67E52883D81CE2D15";

/// A daemon on the example keys plus the two published BDKs, imported over the protocol
/// as the security officer would (TR-31 `B0`, mode `X`, under kek.example).
fn daemon(name: &str) -> Daemon {
    let d = Daemon::start(name);
    let mut so = d.connect("security-officer-1");
    for (id, header, key) in [
        ("bdk.x924", "D0000B0TX00N0000", TDES_BDK),
        ("bdk.aes", "D0000B0AX00N0000", AES_BDK),
    ] {
        let block = tr31::wrap(
            &ClearKey::from_hex(KEK).unwrap(),
            &tr31::Header::parse(header).unwrap(),
            &ClearKey::from_hex(key).unwrap(),
            &mut rand::rng(),
        )
        .unwrap();
        let r = so.call(Opcode::KeyImport, |w| {
            w.str(Tag::Key, id)
                .str(Tag::Kek, "kek.example")
                .str(Tag::KeyBlock, &block);
        });
        assert_eq!(r.status(), Status::Ok, "import {id}: {}", r.message());
    }
    d
}

fn pvv_of(pin: &str, pan: &str) -> String {
    let pvk = pvv::Pvk::new(&ClearKey::from_hex(PVK).unwrap()).unwrap();
    pvv::visa_pvv(&pvk, 1, &Pin::new(pin).unwrap(), &Pan::new(pan).unwrap())
        .unwrap()
        .to_string()
}

/// pin.verify fields of a DUKPT block against the PVV of PIN 1234.
fn verify(c: &mut Raw, bdk: &str, ksn: &[u8], format: u8, block: &[u8], pan: &str) -> Resp {
    let pvv = pvv_of("1234", pan);
    c.call(Opcode::PinVerify, |w| {
        w.str(Tag::Pan, pan)
            .str(Tag::Key, bdk)
            .bytes(Tag::Ksn, ksn)
            .u8(Tag::Format, format)
            .bytes(Tag::PinBlock, block)
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv);
    })
}

fn tdes_ksn(counter: u32) -> Ksn {
    match Ksn::from_hex(TDES_KSN).unwrap() {
        Ksn::Tdes(k) => Ksn::Tdes(k.with_counter(counter).unwrap()),
        Ksn::Aes(_) => unreachable!(),
    }
}

fn aes_ksn(counter: u32) -> Ksn {
    match Ksn::from_hex(AES_KSN).unwrap() {
        Ksn::Aes(k) => Ksn::Aes(k.with_counter(counter)),
        Ksn::Tdes(_) => unreachable!(),
    }
}

fn ksn_bytes(ksn: &Ksn) -> Vec<u8> {
    hex::decode(ksn.to_string()).unwrap()
}

/// A terminal's block: `pin` under the DUKPT PIN key of `ksn`.
fn terminal_block(bdk_hex: &str, ksn: &Ksn, format: Format, pin: &str, pan: &str) -> Vec<u8> {
    let algorithm = match ksn {
        Ksn::Tdes(_) => Algorithm::Tdes,
        Ksn::Aes(_) => Algorithm::Aes,
    };
    let bdk = Bdk::new(algorithm, &ClearKey::from_hex(bdk_hex).unwrap()).unwrap();
    dukpt::encipher_pin(
        &bdk,
        ksn,
        dukpt::default_pin_key_type(ksn, format),
        format,
        &Pin::new(pin).unwrap(),
        Some(&Pan::new(pan).unwrap()),
        &mut rand::rng(),
    )
    .unwrap()
    .as_bytes()
    .to_vec()
}

fn reason(r: &Resp) -> String {
    r.fields()
        .str(Tag::Reason)
        .unwrap()
        .unwrap_or_default()
        .to_owned()
}

fn field(r: &Resp) -> Option<u8> {
    r.fields().u8(Tag::Field).unwrap()
}

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
    let r = c.call(Opcode::PinTranslate, |w| {
        w.str(Tag::Pan, TDES_PAN)
            .str(Tag::Key, "bdk.x924")
            .bytes(Tag::Ksn, &tdes_first)
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &tdes_block)
            .str(Tag::DestKey, "zpk.example")
            .u8(Tag::DestFormat, 0);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let digits = &TDES_PAN[TDES_PAN.len() - 13..TDES_PAN.len() - 1];
    let pin_field = u64::from_str_radix("041234FFFFFFFFFF", 16).unwrap();
    let pan_field = u64::from_str_radix(&format!("0000{digits}"), 16).unwrap();
    let mut expected = (pin_field ^ pan_field).to_be_bytes();
    let zpk = cofre::crypto::cipher::BlockCipher::tdes(&hex::decode(ZPK).unwrap()).unwrap();
    zpk.encrypt_ecb(&mut expected).unwrap();
    assert_eq!(
        hex::encode_upper(r.bytes(Tag::PinBlock)),
        hex::encode_upper(expected)
    );
    assert_eq!((r.u32(Tag::KeyVersion), r.u32(Tag::DestKeyVersion)), (1, 1));

    // AES DUKPT -> zpk.example.aes, format 4 (random fill): the answer verifies under
    // the zone key as an ordinary format 4 block.
    let r = c.call(Opcode::PinTranslate, |w| {
        w.str(Tag::Pan, AES_PAN)
            .str(Tag::Key, "bdk.aes")
            .bytes(Tag::Ksn, &aes_first)
            .u8(Tag::Format, 4)
            .bytes(Tag::PinBlock, &aes_block)
            .str(Tag::DestKey, "zpk.example.aes")
            .u8(Tag::DestFormat, 4);
    });
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
    let r = c.call(Opcode::PinTranslate, |w| {
        w.str(Tag::Pan, TDES_PAN)
            .str(Tag::Key, "bdk.x924")
            .bytes(Tag::Ksn, &tdes_first)
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &tdes_block)
            .str(Tag::DestKey, "zpk.example")
            .u8(Tag::DestFormat, 1);
    });
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
        let r = c.call(Opcode::PinTranslate, |w| {
            w.str(Tag::Pan, pan)
                .str(Tag::Key, bdk)
                .bytes(Tag::Ksn, &ksn_bytes(&ksn))
                .u8(Tag::Format, format)
                .bytes(Tag::PinBlock, block)
                .str(Tag::DestKey, "zpk.example")
                .u8(Tag::DestFormat, 0);
        });
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
    let r = c.call(Opcode::PinTranslate, |w| {
        w.str(Tag::Pan, pan)
            .str(Tag::Key, "bdk.x924")
            .bytes(Tag::Ksn, &tdes)
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &block8)
            .str(Tag::DestKey, "bdk.x924")
            .u8(Tag::DestFormat, 0);
    });
    assert_eq!(r.status(), Status::WrongKeyUsage);
    let r = verify(&mut c, "bdk.missing", &tdes, 0, &block8, pan);
    assert_eq!(r.status(), Status::UnknownKey);
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

fn leaks(haystack: &str, needle: &str) -> bool {
    let bytes = hex::decode(needle).unwrap_or_else(|_| needle.as_bytes().to_vec());
    haystack.contains(needle)
        || haystack.contains(&needle.to_lowercase())
        || haystack.contains(&hex::encode(&bytes))
        || haystack.contains(&hex::encode_upper(&bytes))
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
    use cofre::client::{
        Card, Client, ClientConfig, ClientError, DukptPinBlock, PinReference, PinTranslateRequest,
        Verification,
    };
    let d = daemon("dukpt-client");
    let config = ClientConfig::for_identity(
        vec![d.addr.clone()],
        &daemon::example_dir().join("pki"),
        "issuing-host-1",
    );
    let client = Client::connect(config).await.unwrap();
    let card = Card::Pan(TDES_PAN.into());
    let reference = PinReference::Pvv {
        pvv: pvv_of("1234", TDES_PAN),
        pvki: 1,
    };
    let mut block = DukptPinBlock {
        bdk: "bdk.x924".into(),
        ksn: hex::decode(TDES_KSN).unwrap(),
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
