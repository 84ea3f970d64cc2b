//! Golden frames of `pin_lmk.txt`: the PIN under the LMK as an operand (pin.random,
//! pin.reference, pin.translate from and into a `pin_blob`; protocol/README.md). The
//! blob of PIN 1234 is made by translating the tour's format 0 block into the LMK form;
//! the frames after it use that answer, so their PVV, offset and PIN block are exact.
//! Written after every other vector so that their request ids stay as they were.

use cofre::protocol::{Opcode, Tag};

use super::{Writer, decode};

const FILE: &str = "pin_lmk.txt";
const PAN: &str = "4111111111111111";
/// PIN 1234 for PAN 4111111111111111, format 0 under zpk.example (the README tour's).
const TOUR_BLOCK: &str = "2A3D408A1977DDE9";
/// The numeric token of PAN 4111111111111111 under token.example (pin.txt's).
const TOKEN: &str = "4111117668871111";

pub fn write(w: &mut Writer) {
    let host = "issuing-host-1";
    let op = Opcode::PinRandom.code();
    w.add(
        FILE,
        "pin.random, 4 digits (random PIN)",
        host,
        op,
        &["pin_blob"],
        |f| {
            f.str(Tag::Pan, PAN);
        },
    );
    w.add(
        FILE,
        "pin.random, 13 digits: malformed_field",
        host,
        op,
        &[],
        |f| {
            f.str(Tag::Pan, PAN).u8(Tag::PinLength, 13);
        },
    );
    w.add(
        FILE,
        "pin.random as the ATM switch: not_authorised",
        "atm-switch-1",
        op,
        &[],
        |f| {
            f.str(Tag::Pan, PAN);
        },
    );
    w.add(
        FILE,
        "pin.random for a card given as a token (the answer names the token key version)",
        host,
        op,
        &["pin_blob"],
        |f| {
            f.str(Tag::Token, TOKEN);
        },
    );
    let block = hex::decode(TOUR_BLOCK).unwrap();
    let sealed = w.add(
        FILE,
        "pin.translate format 0 zpk.example -> the LMK form (blob is random)",
        host,
        Opcode::PinTranslate.code(),
        &["pin_blob"],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &block);
        },
    );
    let blob = decode(&sealed).1["pin_blob"].clone();
    for (name, dest_format, with_block) in [
        (
            "pin.translate the blob above -> format 0 zpk.example: the tour's block",
            0,
            false,
        ),
        (
            "pin.translate the blob above -> format 1: translation_not_allowed",
            1,
            false,
        ),
        (
            "pin.translate with both pin_blob and pin_block: malformed_field pin_block",
            0,
            true,
        ),
    ] {
        w.add(FILE, name, host, Opcode::PinTranslate.code(), &[], |f| {
            f.str(Tag::Pan, PAN).bytes(Tag::PinBlob, &blob);
            if with_block {
                f.bytes(Tag::PinBlock, &block);
            }
            f.str(Tag::DestKey, "zpk.example")
                .u8(Tag::DestFormat, dest_format);
        });
    }
    for (name, pan, pvk, method) in [
        (
            "pin.reference: the blob's Visa PVV, PVKI 1 (the tour's 9464)",
            PAN,
            "pvk.example",
            0,
        ),
        (
            "pin.reference: the blob's IBM 3624 offset (default parameters)",
            PAN,
            "pvk.example",
            1,
        ),
        (
            "pin.reference with another card's PAN: invalid_blob",
            "4000001234567899",
            "pvk.example",
            0,
        ),
        (
            "pin.reference under a CVK: wrong_key_usage",
            PAN,
            "cvk.example",
            0,
        ),
        (
            "pin.reference, another card's PAN under a CVK: wrong_key_usage (keys before the blob)",
            "4000001234567899",
            "cvk.example",
            0,
        ),
    ] {
        w.add(FILE, name, host, Opcode::PinReference.code(), &[], |f| {
            f.str(Tag::Pan, pan)
                .bytes(Tag::PinBlob, &blob)
                .str(Tag::Pvk, pvk);
            if method == 1 {
                f.u8(Tag::Method, 1);
            }
        });
    }
}
