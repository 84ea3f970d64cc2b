//! Golden frames of `pin_dukpt.txt`: PIN blocks from POS terminals under DUKPT
//! (protocol/README.md, "DUKPT input"). The two published BDKs are imported first over
//! the protocol, so the example key set stays as it is; then the published blocks verify
//! and translate, and each refusal answers its status. Written after every other vector
//! so that their request ids stay as they were.

use cofre::crypto::pinblock::Format;
use cofre::protocol::{Opcode, Tag};

use super::Writer;
use cofre::crypto::dukpt::{KeyType, Ksn};

use super::dukpt_terminal::{
    AES_BDK, AES_BLOCK, AES_KSN, AES_PAN, AES192_BDK, AES256_BDK, AES256_BLOCK, TDES_BDK,
    TDES_BLOCK, TDES_KSN, TDES_PAN, aes_block_of, ksn_bytes, pvv_of, tdes_ksn, terminal_block,
    wrapped,
};

const FILE: &str = "pin_dukpt.txt";

fn h(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

/// A verification of a DUKPT block of `pan` against the PVV of PIN 1234.
fn verify(
    w: &mut Writer,
    name: &str,
    identity: &str,
    key: (&str, &[u8]),
    block: (u8, &[u8]),
    pan: &str,
) {
    verify_as(w, name, identity, key, None, block, pan);
}

/// [`verify`] with `pin_key_type` = `key_type` when given.
fn verify_as(
    w: &mut Writer,
    name: &str,
    identity: &str,
    (bdk, ksn): (&str, &[u8]),
    key_type: Option<u8>,
    (format, block): (u8, &[u8]),
    pan: &str,
) {
    let pvv = pvv_of("1234", pan);
    w.add(FILE, name, identity, Opcode::PinVerify.code(), &[], |f| {
        f.str(Tag::Pan, pan).str(Tag::Key, bdk).bytes(Tag::Ksn, ksn);
        if let Some(t) = key_type {
            f.u8(Tag::PinKeyType, t);
        }
        f.u8(Tag::Format, format)
            .bytes(Tag::PinBlock, block)
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv);
    });
}

/// A key.import by the security officer of the clear `key` as `id`, a TR-31 block with
/// `header` under kek.example.
fn import(w: &mut Writer, name: &str, (id, header, key): (&str, &str, &str)) {
    let block = wrapped(header, key);
    w.add(
        FILE,
        name,
        "security-officer-1",
        Opcode::KeyImport.code(),
        &[],
        |f| {
            f.str(Tag::Key, id)
                .str(Tag::Kek, "kek.example")
                .str(Tag::KeyBlock, &block);
        },
    );
}

/// The AES DUKPT PIN working key types (`pin_key_type`): the AES-192 and AES-256 BDKs
/// imported, a block under each PIN key size, the translation of the AES-256 one, and
/// each refusal. Written after every other DUKPT vector, so their request ids stay.
fn write_key_types(w: &mut Writer) {
    for (name, id, key) in [
        (
            "key.import of the X9.24-3 AES-256 BDK as bdk.aes256 (TR-31 B0, mode X)",
            "bdk.aes256",
            AES256_BDK,
        ),
        (
            "key.import of a test AES-192 BDK (the AES-256 BDK's leftmost 24 bytes) as bdk.aes192",
            "bdk.aes192",
            AES192_BDK,
        ),
    ] {
        import(w, name, (id, "D0000B0AX00N0000", key));
    }
    let aes = h(AES_KSN);
    let first = Ksn::from_hex(AES_KSN).unwrap();
    let aes256_block = h(AES256_BLOCK);
    verify_as(
        w,
        "pin.verify of the X9.24-3 AES-128 block under bdk.aes naming pin_key_type 2 (AES-128, the default)",
        "issuing-host-1",
        ("bdk.aes", &aes),
        Some(2),
        (4, &h(AES_BLOCK)),
        AES_PAN,
    );
    verify_as(
        w,
        "pin.verify of PIN 1234 under the X9.24-3 AES-256 PIN key of bdk.aes256, counter 1 (pin_key_type 4)",
        "issuing-host-1",
        ("bdk.aes256", &aes),
        Some(4),
        (4, &aes256_block),
        AES_PAN,
    );
    verify_as(
        w,
        "pin.verify of PIN 1234 under the AES-192 PIN key of bdk.aes256, counter 1 (pin_key_type 3)",
        "issuing-host-1",
        ("bdk.aes256", &aes),
        Some(3),
        (
            4,
            &aes_block_of(AES256_BDK, &first, KeyType::Aes192, "1234", AES_PAN),
        ),
        AES_PAN,
    );
    verify_as(
        w,
        "pin.verify of PIN 1234 under the AES-192 PIN key of bdk.aes192, counter 1 (pin_key_type 3)",
        "issuing-host-1",
        ("bdk.aes192", &aes),
        Some(3),
        (
            4,
            &aes_block_of(AES192_BDK, &first, KeyType::Aes192, "1234", AES_PAN),
        ),
        AES_PAN,
    );
    w.add(
        FILE,
        "pin.translate of the AES-256 PIN key block to format 0 under zpk.example (deterministic)",
        "issuing-host-1",
        Opcode::PinTranslate.code(),
        &[],
        |f| {
            f.str(Tag::Pan, AES_PAN)
                .str(Tag::Key, "bdk.aes256")
                .bytes(Tag::Ksn, &aes)
                .u8(Tag::PinKeyType, 4)
                .u8(Tag::Format, 4)
                .bytes(Tag::PinBlock, &aes256_block)
                .str(Tag::DestKey, "zpk.example")
                .u8(Tag::DestFormat, 0);
        },
    );
    verify(
        w,
        "pin.verify of the AES-256 PIN key block without pin_key_type: the default AES-128 PIN key does not decode it, invalid_pin_block",
        "issuing-host-1",
        ("bdk.aes256", &aes),
        (4, &aes256_block),
        AES_PAN,
    );
    for (name, bdk, key_type) in [
        (
            "pin.verify naming an AES-192 PIN key (3) under the AES-128 bdk.aes: wrong_key_usage, reason pin_key_type_too_strong",
            "bdk.aes",
            3,
        ),
        (
            "pin.verify naming an AES-256 PIN key (4) under the AES-192 bdk.aes192: wrong_key_usage, reason pin_key_type_too_strong",
            "bdk.aes192",
            4,
        ),
        (
            "pin.verify naming a 3TDEA PIN key (1) with an AES KSN: malformed_field naming pin_key_type",
            "bdk.aes256",
            1,
        ),
        (
            "pin.verify naming pin_key_type 5 (no such type): malformed_field naming pin_key_type",
            "bdk.aes256",
            5,
        ),
    ] {
        verify_as(
            w,
            name,
            "issuing-host-1",
            (bdk, &aes),
            Some(key_type),
            (4, &aes256_block),
            AES_PAN,
        );
    }
    verify_as(
        w,
        "pin.verify naming pin_key_type with a TDES KSN: malformed_field naming pin_key_type",
        "issuing-host-1",
        ("bdk.x924", &h(TDES_KSN)),
        Some(2),
        (0, &h(TDES_BLOCK)),
        TDES_PAN,
    );
    let pvv = pvv_of("1234", AES_PAN);
    w.add(
        FILE,
        "pin.verify naming pin_key_type without a KSN (zone key): malformed_field naming pin_key_type",
        "issuing-host-1",
        Opcode::PinVerify.code(),
        &[],
        |f| {
            f.str(Tag::Pan, AES_PAN)
                .str(Tag::Key, "zpk.example.aes")
                .u8(Tag::PinKeyType, 2)
                .u8(Tag::Format, 4)
                .bytes(Tag::PinBlock, &aes256_block)
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, &pvv);
        },
    );
}

pub fn write(w: &mut Writer) {
    let host = "issuing-host-1";
    for (name, id, header, key) in [
        (
            "key.import of the X9.24-1 Annex A TDES BDK as bdk.x924 (TR-31 B0, mode X; KCV 08D7B4)",
            "bdk.x924",
            "D0000B0TX00N0000",
            TDES_BDK,
        ),
        (
            "key.import of the X9.24-3 AES-128 BDK as bdk.aes (TR-31 B0, mode X)",
            "bdk.aes",
            "D0000B0AX00N0000",
            AES_BDK,
        ),
    ] {
        import(w, name, (id, header, key));
    }
    let (tdes, aes) = (h(TDES_KSN), h(AES_KSN));
    verify(
        w,
        "pin.verify of the X9.24-1 A.4.2 block (KSN FFFF9876543210E00001, PIN 1234, PAN 4012345678909) under bdk.x924",
        host,
        ("bdk.x924", &tdes),
        (0, &h(TDES_BLOCK)),
        TDES_PAN,
    );
    verify(
        w,
        "pin.verify of the X9.24-3 format 4 block (KSN 123456789012345600000001, PIN 1234) under bdk.aes",
        host,
        ("bdk.aes", &aes),
        (4, &h(AES_BLOCK)),
        AES_PAN,
    );
    w.add(
        FILE,
        "pin.translate of the X9.24-1 A.4.2 block to format 0 under zpk.example (deterministic)",
        host,
        Opcode::PinTranslate.code(),
        &[],
        |f| {
            f.str(Tag::Pan, TDES_PAN)
                .str(Tag::Key, "bdk.x924")
                .bytes(Tag::Ksn, &tdes)
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &h(TDES_BLOCK))
                .str(Tag::DestKey, "zpk.example")
                .u8(Tag::DestFormat, 0);
        },
    );
    let second = tdes_ksn(2);
    let wrong = terminal_block(TDES_BDK, &second, Format::Iso0, "9999", TDES_PAN);
    verify(
        w,
        "pin.verify of PIN 9999 from the same device, counter 2: verification_failed (counted)",
        host,
        ("bdk.x924", &ksn_bytes(&second)),
        (0, &wrong),
        TDES_PAN,
    );
    verify(
        w,
        "pin.verify with TDES KSN counter 1FFFFF: ksn_refused, reason counter_exhausted",
        host,
        ("bdk.x924", &ksn_bytes(&tdes_ksn(0x1F_FFFF))),
        (0, &h(TDES_BLOCK)),
        TDES_PAN,
    );
    verify(
        w,
        "pin.verify with TDES KSN counter 0007FF (11 one-bits): ksn_refused, reason counter_one_bits",
        host,
        ("bdk.x924", &ksn_bytes(&tdes_ksn(0x7FF))),
        (0, &h(TDES_BLOCK)),
        TDES_PAN,
    );
    verify(
        w,
        "pin.verify with AES KSN counter 0: ksn_refused, reason counter_zero",
        host,
        ("bdk.aes", &h("123456789012345600000000")),
        (4, &h(AES_BLOCK)),
        AES_PAN,
    );
    verify(
        w,
        "pin.verify with an 11-byte KSN: malformed_field naming ksn",
        host,
        ("bdk.x924", &h("FFFF9876543210E0000100")),
        (0, &h(TDES_BLOCK)),
        TDES_PAN,
    );
    verify(
        w,
        "pin.verify with an AES KSN and format 0: malformed_field naming format (AES DUKPT is format 4)",
        host,
        ("bdk.aes", &aes),
        (0, &h(TDES_BLOCK)),
        TDES_PAN,
    );
    verify(
        w,
        "pin.verify with a KSN and a ZPK as key: wrong_key_usage",
        host,
        ("zpk.example", &tdes),
        (0, &h(TDES_BLOCK)),
        TDES_PAN,
    );
    verify(
        w,
        "pin.verify with a 10-byte KSN and the AES BDK: wrong_key_usage",
        host,
        ("bdk.aes", &tdes),
        (0, &h(TDES_BLOCK)),
        TDES_PAN,
    );
    let pvv = pvv_of("1234", TDES_PAN);
    w.add(
        FILE,
        "pin.verify under a BDK without a KSN: wrong_key_usage",
        host,
        Opcode::PinVerify.code(),
        &[],
        |f| {
            f.str(Tag::Pan, TDES_PAN)
                .str(Tag::Key, "bdk.x924")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &h(TDES_BLOCK))
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, &pvv);
        },
    );
    verify(
        w,
        "pin.verify by atm-switch-1 with bdk.x924 (its role's keys are zpk.*, tpk.*, pvk.*): not_authorised",
        "atm-switch-1",
        ("bdk.x924", &tdes),
        (0, &h(TDES_BLOCK)),
        TDES_PAN,
    );
    write_key_types(w);
}
