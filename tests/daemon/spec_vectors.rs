//! Golden frames for the rules protocol/README.md, algorithms.md and keys.md state: one
//! per rule (statuses by case, the order of checks, token_version, tokens of short PANs,
//! IBM 3624 check lengths, PVVs of long PINs, MAC minimum lengths, TR-31 import rules,
//! key administration's refusals, 16-byte dCVV2 keys). Written after the others so that
//! their request ids stay as they were.

use cofre::crypto::pinblock::Format;
use cofre::crypto::{ClearKey, tr31};
use cofre::protocol::{Opcode, Tag};

use super::{PAN, Writer, block};

/// kek.example, the AES KEK of the example set.
const KEK: &str = "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6";
const ZPK: &str = "0123456789ABCDEFFEDCBA9876543210";

/// `key` wrapped under kek.example with a TR-31 header.
fn wrapped(header: &str, key: &str) -> String {
    tr31::wrap(
        &ClearKey::from_hex(KEK).unwrap(),
        &tr31::Header::parse(header).unwrap(),
        &ClearKey::from_hex(key).unwrap(),
        &mut rand::rng(),
    )
    .unwrap()
}

pub fn write(w: &mut Writer) {
    let host = "issuing-host-1";
    let so = "security-officer-1";
    let op = |o: Opcode| o.code();

    // Frames and the order of checks.
    w.add_raw(
        "errors.txt",
        "a frame of 3 bytes: the id-0 answer, reason frame_error, then the connection closes",
        host,
        &hex::decode("00000003010100").unwrap(),
    );
    let mut typed = Vec::new();
    cofre::protocol::encode_request(&mut typed, op(Opcode::Health), 0x31, |_| {}).unwrap();
    typed[5] = 2;
    w.add_raw(
        "errors.txt",
        "health with message type 2: malformed_field without a field",
        host,
        &typed,
    );
    let mut both = typed.clone();
    both[4] = 2;
    both[7] = 0x32;
    w.add_raw(
        "errors.txt",
        "version 2 and type 2: unsupported_version (the version is checked first)",
        host,
        &both,
    );
    w.add(
        "errors.txt",
        "cvv.generate with expiry 1328 (MMYY sent by mistake): malformed_field naming expiry",
        host,
        op(Opcode::CvvGenerate),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "1328")
                .str(Tag::ServiceCode, "201");
        },
    );
    w.add(
        "errors.txt",
        "pin.verify, format 4 with an 8-byte block: malformed_field naming pin_block",
        host,
        op(Opcode::PinVerify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example.aes")
                .u8(Tag::Format, 4)
                .bytes(Tag::PinBlock, &[0x11; 8])
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, "9464");
        },
    );
    w.add(
        "errors.txt",
        "pin.verify, format 0 under an AES ZPK: wrong_key_usage",
        host,
        op(Opcode::PinVerify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example.aes")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &[0x11; 8])
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, "9464");
        },
    );
    w.add(
        "errors.txt",
        "pin.deliver with a 24-byte blob: malformed_field naming pin_blob",
        host,
        op(Opcode::PinDeliver),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .bytes(Tag::PinBlob, &[1; 24])
                .str(Tag::DeliveryKey, "pin-delivery.example");
        },
    );
    w.add(
        "errors.txt",
        "dcvv2.verify of a 4-digit code: malformed_field naming dcvv2 (not a counted try)",
        host,
        op(Opcode::Dcvv2Verify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, 9)
                .str(Tag::Dcvv2, "1234");
        },
    );
    w.add(
        "errors.txt",
        "token_version with a pan: malformed_field naming token_version",
        host,
        op(Opcode::CvvGenerate),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .u32(Tag::TokenVersion, 1)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "201");
        },
    );
    w.add(
        "errors.txt",
        "a key outside the role with a malformed value: not_authorised (keys before values)",
        "atm-switch-1",
        op(Opcode::PinVerify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "cvk.example")
                .u8(Tag::Format, 9)
                .bytes(Tag::PinBlock, &[0; 8])
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, "9464");
        },
    );

    // PIN verification values.
    w.add(
        "pin.txt",
        "pin.verify, PIN 123499 against the PVV of 1234: ok (a PVV checks the 4 leftmost digits)",
        host,
        op(Opcode::PinVerify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &block(Format::Iso0, ZPK, "123499"))
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, "9464");
        },
    );
    w.add(
        "pin.txt",
        "pin.verify, PIN 739152 against the 4-digit offset 6119: ok (the rightmost 4 digits checked)",
        host,
        op(Opcode::PinVerify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &block(Format::Iso0, ZPK, "739152"))
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Offset, "6119");
        },
    );
    w.add(
        "pin.txt",
        "pin.verify, PIN 739152 against its full offset 926119: ok",
        host,
        op(Opcode::PinVerify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &block(Format::Iso0, ZPK, "739152"))
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Offset, "926119");
        },
    );

    // Tokens of every PAN length, and token_version on answers about a token's card.
    w.add(
        "pan.txt",
        "pan.tokenise of a 15-digit PAN (Amex): 5 leading digits kept",
        host,
        op(Opcode::Tokenise),
        &[],
        |f| {
            f.str(Tag::Pan, "378282246310005");
        },
    );
    w.add(
        "pan.txt",
        "pan.tokenise alphanumeric of a 12-digit PAN: 4 leading digits kept",
        host,
        op(Opcode::Tokenise),
        &[],
        |f| {
            f.str(Tag::Pan, "500000000017").u8(Tag::Alphabet, 1);
        },
    );
    w.add(
        "pan.txt",
        "pan.generate of a 15-digit PAN for BIN 378282 (all random)",
        host,
        op(Opcode::PanGenerate),
        &["token", "masked_pan", "lookup_token"],
        |f| {
            f.str(Tag::Bin, "378282").u8(Tag::PanLength, 15);
        },
    );
    w.add(
        "card.txt",
        "cvv.generate, the card given as a token: the answer names token_version",
        host,
        op(Opcode::CvvGenerate),
        &[],
        |f| {
            f.str(Tag::Token, "4111117668871111")
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "201");
        },
    );

    // MAC lengths are the key's.
    w.add(
        "mac.txt",
        "key.import of the retail MAC key as mac.iso8583 with mac_min_length 4",
        so,
        op(Opcode::KeyImport),
        &[],
        |f| {
            f.str(Tag::Key, "mac.iso8583")
                .str(Tag::Kek, "kek.example")
                .str(Tag::KeyBlock, &wrapped("D0000M3TC00E0000", ZPK))
                .u8(Tag::MacMinLength, 4);
        },
    );
    let mac4 = hex::decode("19F3051A").unwrap();
    w.add(
        "mac.txt",
        "mac.verify of a 4-byte MAC under mac.iso8583: ok",
        host,
        op(Opcode::MacVerify),
        &[],
        |f| {
            f.str(Tag::Key, "mac.iso8583")
                .bytes(Tag::Data, b"0200 cofre")
                .bytes(Tag::Mac, &mac4);
        },
    );
    w.add(
        "mac.txt",
        "mac.verify of a wrong 4-byte MAC under mac.iso8583: verification_failed",
        host,
        op(Opcode::MacVerify),
        &[],
        |f| {
            f.str(Tag::Key, "mac.iso8583")
                .bytes(Tag::Data, b"0200 cofre")
                .bytes(Tag::Mac, &[0x19, 0xF3, 0x05, 0x1B]);
        },
    );
    w.add(
        "mac.txt",
        "mac.verify of a 4-byte MAC under mac.example.retail (full length only): malformed_field naming mac",
        host,
        op(Opcode::MacVerify),
        &[],
        |f| {
            f.str(Tag::Key, "mac.example.retail")
                .bytes(Tag::Data, b"0200 cofre")
                .bytes(Tag::Mac, &mac4);
        },
    );

    // A 16-byte dCVV2 key: protocol/dcvv2.md vector 1 (counter 0 gives 184).
    w.add(
        "dcvv2.txt",
        "key.import of a 16-byte dCVV2 key (dcvv2.md vector 1's) as dcvv2.sixteen",
        so,
        op(Opcode::KeyImport),
        &[],
        |f| {
            f.str(Tag::Key, "dcvv2.sixteen")
                .str(Tag::Kek, "kek.example")
                .str(
                    Tag::KeyBlock,
                    &wrapped("D000010HC00N0000", "000102030405060708090A0B0C0D0E0F"),
                );
        },
    );
    w.add(
        "dcvv2.txt",
        "dcvv2.generate under dcvv2.sixteen, counter 0: 184 (dcvv2.md vector 1)",
        host,
        op(Opcode::Dcvv2Generate),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "dcvv2.sixteen")
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, 0);
        },
    );

    // Key administration: defaults, refusals by field, TR-31 import rules.
    w.add(
        "keys.txt",
        "key.generate with a taken id: malformed_field naming key, reason key_exists",
        so,
        op(Opcode::KeyGenerate),
        &[],
        |f| {
            f.str(Tag::Key, "zpk.example").str(Tag::Kind, "zpk");
        },
    );
    w.add(
        "keys.txt",
        "key.generate of an AES CVK: malformed_field naming algorithm",
        so,
        op(Opcode::KeyGenerate),
        &[],
        |f| {
            f.str(Tag::Key, "cvk.aes")
                .str(Tag::Kind, "cvk")
                .str(Tag::Algorithm, "aes");
        },
    );
    w.add(
        "keys.txt",
        "key.generate of an unknown kind: malformed_field naming kind",
        so,
        op(Opcode::KeyGenerate),
        &[],
        |f| {
            f.str(Tag::Key, "x.vector").str(Tag::Kind, "hsm");
        },
    );
    w.add(
        "keys.txt",
        "key.generate of a 16-byte dCVV2 key (random)",
        so,
        op(Opcode::KeyGenerate),
        &["kcv"],
        |f| {
            f.str(Tag::Key, "dcvv2.vector")
                .str(Tag::Kind, "dcvv2")
                .u8(Tag::KeyLength, 16);
        },
    );
    let p0e = wrapped("D0000P0TE00E0000", "5B5B5B5B5B5B5B5B6D6D6D6D6D6D6D6D");
    w.add(
        "keys.txt",
        "key.import of a P0 block with mode E as a zpk: key_block_refused (the mode must be B)",
        so,
        op(Opcode::KeyImport),
        &[],
        |f| {
            f.str(Tag::Key, "zpk.wrong-mode")
                .str(Tag::Kek, "kek.example")
                .str(Tag::KeyBlock, &p0e)
                .str(Tag::Kind, "zpk");
        },
    );
    w.add(
        "keys.txt",
        "key.import of the same block without kind: a pin-delivery key (P0 with mode E)",
        so,
        op(Opcode::KeyImport),
        &[],
        |f| {
            f.str(Tag::Key, "pin-delivery.imported")
                .str(Tag::Kek, "kek.example")
                .str(Tag::KeyBlock, &p0e);
        },
    );
    w.add(
        "keys.txt",
        "key.export of pin-delivery.example under kek.example: header D0000P0TE00N0000 (random)",
        so,
        op(Opcode::KeyExport),
        &["key_block"],
        |f| {
            f.str(Tag::Key, "pin-delivery.example")
                .str(Tag::Kek, "kek.example");
        },
    );
}
