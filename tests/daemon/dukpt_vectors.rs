//! Golden frames of `pin_dukpt.txt`: PIN blocks from POS terminals under DUKPT
//! (protocol/README.md, "DUKPT input"). The two published BDKs are imported first over
//! the protocol, so the example key set stays as it is; then the published blocks verify
//! and translate, and each refusal answers its status. Written after every other vector
//! so that their request ids stay as they were.

use cofre::crypto::pinblock::Format;
use cofre::protocol::{Opcode, Tag};

use super::Writer;
use super::dukpt_terminal::{
    AES_BDK, AES_BLOCK, AES_KSN, AES_PAN, TDES_BDK, TDES_BLOCK, TDES_KSN, TDES_PAN, ksn_bytes,
    pvv_of, tdes_ksn, terminal_block, wrapped,
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
    (bdk, ksn): (&str, &[u8]),
    (format, block): (u8, &[u8]),
    pan: &str,
) {
    let pvv = pvv_of("1234", pan);
    w.add(FILE, name, identity, Opcode::PinVerify.code(), &[], |f| {
        f.str(Tag::Pan, pan)
            .str(Tag::Key, bdk)
            .bytes(Tag::Ksn, ksn)
            .u8(Tag::Format, format)
            .bytes(Tag::PinBlock, block)
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv);
    });
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
}
