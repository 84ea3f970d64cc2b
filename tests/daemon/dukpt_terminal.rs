//! What the DUKPT tests of the live daemon share (tests/hsm_dukpt.rs,
//! tests/hsm_dukpt_refusals.rs, the golden frames of pin_dukpt.txt): the published BDKs,
//! KSNs and blocks, a daemon that holds the BDKs, and terminal-side block making.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::daemon::{Daemon, Raw, Resp};
use cofre::crypto::cipher::Algorithm;
use cofre::crypto::dukpt::{self, Bdk, Ksn};
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::Format;
use cofre::crypto::{ClearKey, Pin, pvv, tr31};
use cofre::protocol::{Opcode, Status, Tag};

pub const KEK: &str = "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6";
pub const PVK: &str = "0123456789ABCDEFFEDCBA9876543210";
pub const ZPK: &str = "0123456789ABCDEFFEDCBA9876543210";
pub const ZPK_AES: &str = "00112233445566778899AABBCCDDEEFF";

// ANSI X9.24-1:2009 Annex A.4.1-A.4.2 (tests/vectors/published.md, "DUKPT"): BDK, the
// first KSN of the example device, and its format 0 block of PIN 1234, PAN 4012345678909.
pub const TDES_BDK: &str = "0123456789ABCDEFFEDCBA9876543210";
pub const TDES_IPEK: &str = "6AC292FAA1315B4D858AB3A3D7D5933A";
pub const TDES_KSN: &str = "FFFF9876543210E00001";
pub const TDES_PAN: &str = "4012345678909";
pub const TDES_BLOCK: &str = "1B9C1845EB993A7A";

// ANSI X9.24-3-2017 test vectors (supplement), AES-128 BDK, initial key ID
// 1234567890123456, counter 1: the format 4 block of PIN 1234, PAN 4111111111111111
// under the AES-128 PIN key AF8CB133A78F8DC2D1359F18527593FB.
pub const AES_BDK: &str = "FEDCBA9876543210F1F1F1F1F1F1F1F1";
pub const AES_PIN_KEY: &str = "AF8CB133A78F8DC2D1359F18527593FB";
pub const AES_KSN: &str = "123456789012345600000001";
pub const AES_PAN: &str = "4111111111111111";
pub const AES_BLOCK: &str = "A912150391AB65A67E52883D81CE2D15";

// The same supplement's AES-256 BDK (the AES-128 one twice), counter 1 of the same
// device: its AES-256 PIN working key, and the format 4 block of PIN 1234, PAN
// 4111111111111111 with the published fill 2F69ADDE2E9E7ACE under that key (the
// supplement publishes the key; the block is its format 4 encipherment, computed with
// Python `cryptography` from the published PIN and PAN fields 441234AAAAAAAAAA2F69ADDE2E9E7ACE
// and 44111111111111111000000000000000, the same computation that reproduces the
// published AES-128 block A912150391AB65A67E52883D81CE2D15 above).
pub const AES256_BDK: &str = "FEDCBA9876543210F1F1F1F1F1F1F1F1FEDCBA9876543210F1F1F1F1F1F1F1F1";
pub const AES256_PIN_KEY: &str = "8C1AB7BEE973829E30242E0BBBDD4946D540C98FC1B5BDCF94790001A23FD502";
pub const AES256_BLOCK: &str = "B9346D129E53FFC0759FC82331CBE9F7";
/// An AES-192 BDK for tests: the leftmost 24 bytes of the published AES-256 BDK (the
/// X9.24-3-2017 supplement has no AES-192 suite; see tests/dukpt_vectors_aes.rs).
pub const AES192_BDK: &str = "FEDCBA9876543210F1F1F1F1F1F1F1F1FEDCBA9876543210";
/// The published format 4 fill of the X9.24-3-2017 supplement.
pub const AES_FILL: [u8; 8] = [0x2F, 0x69, 0xAD, 0xDE, 0x2E, 0x9E, 0x7A, 0xCE];

/// A daemon on the example keys plus the two published BDKs, imported over the protocol
/// as the security officer would (TR-31 `B0`, mode `X`, under kek.example).
pub fn daemon(name: &str) -> Daemon {
    let d = Daemon::start(name);
    import_bdks(
        &d,
        &[
            ("bdk.x924", "D0000B0TX00N0000", TDES_BDK),
            ("bdk.aes", "D0000B0AX00N0000", AES_BDK),
        ],
    );
    d
}

/// Imports `(id, TR-31 header, clear key)` BDKs under kek.example.
pub fn import_bdks(d: &Daemon, bdks: &[(&str, &str, &str)]) {
    let mut so = d.connect("security-officer-1");
    for &(id, header, key) in bdks {
        let block = wrapped(header, key);
        let r = so.call(Opcode::KeyImport, |w| {
            w.str(Tag::Key, id)
                .str(Tag::Kek, "kek.example")
                .str(Tag::KeyBlock, &block);
        });
        assert_eq!(r.status(), Status::Ok, "import {id}: {}", r.message());
    }
}

/// `key` (hex) as a TR-31 block with `header` under kek.example.
pub fn wrapped(header: &str, key: &str) -> String {
    tr31::wrap(
        &ClearKey::from_hex(KEK).unwrap(),
        &tr31::Header::parse(header).unwrap(),
        &ClearKey::from_hex(key).unwrap(),
        &mut rand::rng(),
    )
    .unwrap()
}

/// pin.translate of a DUKPT block of `pan` to `dest` (key id, format).
pub fn translate(
    c: &mut Raw,
    (bdk, ksn): (&str, &[u8]),
    (format, block): (u8, &[u8]),
    pan: &str,
    (dest_key, dest_format): (&str, u8),
) -> Resp {
    c.call(Opcode::PinTranslate, |w| {
        w.str(Tag::Pan, pan)
            .str(Tag::Key, bdk)
            .bytes(Tag::Ksn, ksn)
            .u8(Tag::Format, format)
            .bytes(Tag::PinBlock, block)
            .str(Tag::DestKey, dest_key)
            .u8(Tag::DestFormat, dest_format);
    })
}

pub fn pvv_of(pin: &str, pan: &str) -> String {
    let pvk = pvv::Pvk::new(&ClearKey::from_hex(PVK).unwrap()).unwrap();
    pvv::visa_pvv(&pvk, 1, &Pin::new(pin).unwrap(), &Pan::new(pan).unwrap())
        .unwrap()
        .to_string()
}

/// pin.verify fields of a DUKPT block against the PVV of PIN 1234.
pub fn verify(c: &mut Raw, bdk: &str, ksn: &[u8], format: u8, block: &[u8], pan: &str) -> Resp {
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

/// pin.verify of an AES DUKPT block of `pan` against the PVV of PIN 1234, naming the PIN
/// key type (`pin_key_type`, the X9.24-3 algorithm indicator) when `key_type` is given.
pub fn verify_typed(
    c: &mut Raw,
    (bdk, ksn): (&str, &[u8]),
    key_type: Option<u8>,
    (format, block): (u8, &[u8]),
    pan: &str,
) -> Resp {
    let pvv = pvv_of("1234", pan);
    c.call(Opcode::PinVerify, |w| {
        w.str(Tag::Pan, pan).str(Tag::Key, bdk).bytes(Tag::Ksn, ksn);
        if let Some(t) = key_type {
            w.u8(Tag::PinKeyType, t);
        }
        w.u8(Tag::Format, format)
            .bytes(Tag::PinBlock, block)
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv);
    })
}

/// The format 4 block of `pin` under the AES DUKPT PIN key of `key_type` for `ksn`, with
/// the published fill (deterministic, so golden frames can carry it).
pub fn aes_block_of(
    bdk_hex: &str,
    ksn: &Ksn,
    key_type: dukpt::KeyType,
    pin: &str,
    pan: &str,
) -> Vec<u8> {
    let bdk = Bdk::new(Algorithm::Aes, &ClearKey::from_hex(bdk_hex).unwrap()).unwrap();
    dukpt::encipher_pin_with_fill(
        &bdk,
        ksn,
        key_type,
        Format::Iso4,
        &Pin::new(pin).unwrap(),
        Some(&Pan::new(pan).unwrap()),
        &AES_FILL,
    )
    .unwrap()
    .as_bytes()
    .to_vec()
}

/// A client library connection to `d` as issuing-host-1, and the PVV reference of PIN
/// 1234 for `pan`.
pub async fn issuing_host_client(
    d: &Daemon,
    pan: &str,
) -> (cofre::client::Client, cofre::client::PinReference) {
    let config = cofre::client::ClientConfig::for_identity(
        vec![d.addr.clone()],
        &super::daemon::example_dir().join("pki"),
        "issuing-host-1",
    );
    let client = cofre::client::Client::connect(config).await.unwrap();
    let reference = cofre::client::PinReference::Pvv {
        pvv: pvv_of("1234", pan),
        pvki: 1,
    };
    (client, reference)
}

pub fn tdes_ksn(counter: u32) -> Ksn {
    match Ksn::from_hex(TDES_KSN).unwrap() {
        Ksn::Tdes(k) => Ksn::Tdes(k.with_counter(counter).unwrap()),
        Ksn::Aes(_) => unreachable!(),
    }
}

pub fn aes_ksn(counter: u32) -> Ksn {
    match Ksn::from_hex(AES_KSN).unwrap() {
        Ksn::Aes(k) => Ksn::Aes(k.with_counter(counter)),
        Ksn::Tdes(_) => unreachable!(),
    }
}

pub fn ksn_bytes(ksn: &Ksn) -> Vec<u8> {
    hex::decode(ksn.to_string()).unwrap()
}

/// A terminal's block: `pin` under the DUKPT PIN key of `ksn`.
pub fn terminal_block(bdk_hex: &str, ksn: &Ksn, format: Format, pin: &str, pan: &str) -> Vec<u8> {
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

/// The ISO 9564-1 format 0 block of `pin` and `pan` under zpk.example, built by hand:
/// `0 n PIN F...F` xor `0000` and the 12 PAN digits before the check digit.
pub fn iso0_under_zpk(pin: &str, pan: &str) -> [u8; 8] {
    let pin_field = format!("0{:X}{pin}{}", pin.len(), "F".repeat(14 - pin.len()));
    let digits = &pan[pan.len() - 13..pan.len() - 1];
    let pin_field = u64::from_str_radix(&pin_field, 16).unwrap();
    let pan_field = u64::from_str_radix(&format!("0000{digits}"), 16).unwrap();
    let mut block = (pin_field ^ pan_field).to_be_bytes();
    let zpk = cofre::crypto::cipher::BlockCipher::tdes(&hex::decode(ZPK).unwrap()).unwrap();
    zpk.encrypt_ecb(&mut block).unwrap();
    block
}

pub fn reason(r: &Resp) -> String {
    r.fields()
        .str(Tag::Reason)
        .unwrap()
        .unwrap_or_default()
        .to_owned()
}

pub fn field(r: &Resp) -> Option<u8> {
    r.fields().u8(Tag::Field).unwrap()
}

/// Whether `needle` (a secret: hex key or PIN) is in `haystack`, in either case or as
/// its bytes' hex.
pub fn leaks(haystack: &str, needle: &str) -> bool {
    let bytes = hex::decode(needle).unwrap_or_else(|_| needle.as_bytes().to_vec());
    haystack.contains(needle)
        || haystack.contains(&needle.to_lowercase())
        || haystack.contains(&hex::encode(&bytes))
        || haystack.contains(&hex::encode_upper(&bytes))
}

/// A daemon holding the published TDES, AES-128 and AES-256 BDKs and the AES-192 test BDK.
pub fn key_types_daemon(name: &str) -> Daemon {
    let d = daemon(name);
    import_bdks(
        &d,
        &[
            ("bdk.aes192", "D0000B0AX00N0000", AES192_BDK),
            ("bdk.aes256", "D0000B0AX00N0000", AES256_BDK),
        ],
    );
    d
}

/// pin.translate of an AES DUKPT block to format 0 under zpk.example.
pub fn translate_typed(
    c: &mut Raw,
    (bdk, ksn): (&str, &[u8]),
    key_type: Option<u8>,
    block: &[u8],
    pan: &str,
) -> Resp {
    c.call(Opcode::PinTranslate, |w| {
        w.str(Tag::Pan, pan).str(Tag::Key, bdk).bytes(Tag::Ksn, ksn);
        if let Some(t) = key_type {
            w.u8(Tag::PinKeyType, t);
        }
        w.u8(Tag::Format, 4)
            .bytes(Tag::PinBlock, block)
            .str(Tag::DestKey, "zpk.example")
            .u8(Tag::DestFormat, 0);
    })
}
