//! `cofre calc` end to end: the binary is run as a person would run it. Each command's
//! stdout is one line holding the result; each bad input exits non-zero with a one-line
//! reason on stderr that does not echo the secret it was given.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn calc(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
        .arg("calc")
        .args(args)
        .output()
        .expect("run cofre");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs a command that must succeed and returns its single output line.
fn ok(args: &[&str]) -> String {
    let (success, stdout, stderr) = calc(args);
    assert!(success, "{args:?} failed: {stderr}");
    assert_eq!(stdout.lines().count(), 1, "one line of output: {stdout:?}");
    assert!(stdout.ends_with('\n'));
    stdout.trim_end().to_owned()
}

/// Runs a command that must fail and returns its one-line reason.
fn fails(args: &[&str]) -> String {
    let (success, stdout, stderr) = calc(args);
    assert!(!success, "{args:?} should fail");
    assert!(stdout.is_empty(), "nothing on stdout: {stdout:?}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one-line reason: {stderr:?}"
    );
    stderr.trim_end().to_owned()
}

const PVK: &str = "0123456789ABCDEFFEDCBA9876543210";

// Every vector's published source is named next to it and in tests/vectors/published.md.
#[test]
fn every_documented_form_works() {
    // The classic Visa CVV example (HSM simulator test suites, e.g. Atalla) -> 561.
    assert_eq!(
        ok(&[
            "cvv",
            "--cvk",
            PVK,
            "--pan",
            "4123456789012345",
            "--expiry",
            "8701",
            "--service-code",
            "101"
        ]),
        "561"
    );
    // psec 1.3.0 `tests/test_pin.py`, `test_generate_visa_pvv` row 1 -> 8523.
    assert_eq!(
        ok(&[
            "pvv",
            "--pvk",
            PVK,
            "--pvki",
            "1",
            "--pin",
            "4524",
            "--pan",
            "1122334455667788"
        ]),
        "8523"
    );
    // psec 1.3.0 `tests/test_pin.py`, IBM 3624: PIN 1234 -> offset 7710; offset 0000 ->
    // the natural PIN 4524.
    let ibm = [
        "--pvk",
        PVK,
        "--pan",
        "1122334455667788",
        "--decimalization-table",
        "1234567890123456",
        "--validation-start",
        "0",
        "--validation-length",
        "16",
        "--pad",
        "F",
    ];
    let mut offset_args = vec!["ibm3624-offset", "--pin", "1234"];
    offset_args.extend(ibm);
    assert_eq!(ok(&offset_args), "7710");
    let mut pin_args = vec!["ibm3624-pin", "--offset", "0000"];
    pin_args.extend(ibm);
    assert_eq!(ok(&pin_args), "4524");
    // ISO 9564 formats 0 and 2: psec 1.3.0 `psec/pinblock.py`, the `encode_pinblock_iso_0`
    // and `encode_pinblock_iso_2` docstrings.
    assert_eq!(
        ok(&[
            "pinblock",
            "encode",
            "--format",
            "0",
            "--pin",
            "1234",
            "--pan",
            "5544332211009966"
        ]),
        "041277CDDEEFF669"
    );
    assert_eq!(
        ok(&["pinblock", "encode", "--format", "2", "--pin", "1234"]),
        "241234FFFFFFFFFF"
    );
    let f1 = ok(&["pinblock", "encode", "--format", "1", "--pin", "1234"]);
    assert!(f1.starts_with("141234") && f1.len() == 16);
    let f3 = ok(&[
        "pinblock",
        "encode",
        "--format",
        "3",
        "--pin",
        "1234",
        "--pan",
        "5544332211009966",
    ]);
    assert!(f3.starts_with("341277") && f3.len() == 16);
    assert_eq!(
        ok(&[
            "pinblock",
            "decode",
            "--format",
            "3",
            "--block",
            &f3,
            "--pan",
            "5544332211009966"
        ]),
        "1234"
    );
    // Format 4 round trip, then psec's `decipher_pinblock_iso_4` docstring block -> 1234;
    // formats 0, 1 (layout of ISO 9564-1 with a fixed fill) and 2 decode psec's docstring
    // blocks.
    let aes = "00112233445566778899AABBCCDDEEFF";
    let f4 = ok(&[
        "pinblock",
        "encode",
        "--format",
        "4",
        "--pin",
        "1234",
        "--pan",
        "1234567890123456",
        "--key",
        aes,
    ]);
    assert_eq!(f4.len(), 32);
    assert_eq!(
        ok(&[
            "pinblock",
            "decode",
            "--format",
            "4",
            "--block",
            &f4,
            "--pan",
            "1234567890123456",
            "--key",
            aes
        ]),
        "1234"
    );
    assert_eq!(
        ok(&[
            "pinblock",
            "decode",
            "--format",
            "4",
            "--block",
            "E4BE5B623AF7E006AC319E5B93544564",
            "--pan",
            "1234567890123456",
            "--key",
            aes
        ]),
        "1234"
    );
    assert_eq!(
        ok(&[
            "pinblock",
            "decode",
            "--format",
            "0",
            "--block",
            "041277CDDEEFF669",
            "--pan",
            "5544332211009966"
        ]),
        "1234"
    );
    assert_eq!(
        ok(&[
            "pinblock",
            "decode",
            "--format",
            "1",
            "--block",
            "141234789ABCDEF0"
        ]),
        "1234"
    );
    assert_eq!(
        ok(&[
            "pinblock",
            "decode",
            "--format",
            "2",
            "--block",
            "2C123456789012FF"
        ]),
        "123456789012"
    );
    // Formats 0-3 enciphered under TDES when a key is given.
    let enc = ok(&[
        "pinblock",
        "encode",
        "--format",
        "0",
        "--pin",
        "98765",
        "--pan",
        "4111111111111111",
        "--key",
        PVK,
    ]);
    assert_eq!(
        ok(&[
            "pinblock",
            "decode",
            "--format",
            "0",
            "--block",
            &enc,
            "--pan",
            "4111111111111111",
            "--key",
            PVK
        ]),
        "98765"
    );
    // KCVs: psec `generate_kcv` docstring (08D7B4); the AES KCV rule of X9.24-1-2017
    // (7AD386, computed with `cryptography`'s CMAC: see tests/vectors/published.md).
    assert_eq!(ok(&["kcv", "--key", PVK, "--algorithm", "tdes"]), "08D7B4");
    assert_eq!(
        ok(&[
            "kcv",
            "--key",
            "2b7e151628aed2a6abf7158809cf4f3c",
            "--algorithm",
            "aes"
        ]),
        "7AD386"
    );
    // ISO/IEC 9797-1:1999 Annex B, MAC algorithm 3.
    assert_eq!(
        ok(&[
            "mac",
            "--algorithm",
            "iso9797-3",
            "--key",
            PVK,
            "--data",
            &hex::encode("Now is the time for all ")
        ]),
        "A1C72E74EA3FA9B6"
    );
    // NIST SP 800-38B Appendix D.1, example 2.
    assert_eq!(
        ok(&[
            "mac",
            "--algorithm",
            "aes-cmac",
            "--key",
            "2b7e151628aed2a6abf7158809cf4f3c",
            "--data",
            "6bc1bee22e409f96e93d7e117393172a"
        ]),
        "070A16B46B4D4144F79BDD9DD04A287C"
    );
    // RFC 4231 section 4.3, test case 2.
    assert_eq!(
        ok(&[
            "mac",
            "--algorithm",
            "hmac-sha256",
            "--key",
            &hex::encode("Jefe"),
            "--data",
            &hex::encode("what do ya want for nothing?")
        ]),
        "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843"
    );
    let tk = "2B7E151628AED2A6ABF7158809CF4F3C";
    for alphabet in ["numeric", "alphanumeric"] {
        let tok = ok(&[
            "token",
            "--key",
            tk,
            "--pan",
            "4111111111111111",
            "--alphabet",
            alphabet,
        ]);
        assert_ne!(tok, "4111111111111111");
        assert_eq!(
            ok(&[
                "detoken",
                "--key",
                tk,
                "--token",
                &tok,
                "--alphabet",
                alphabet
            ]),
            "4111111111111111"
        );
    }
    let pan = ok(&["pan", "--bin", "535353", "--length", "16"]);
    assert!(pan.starts_with("535353") && pan.len() == 16);
    // cofre's own lookup token format (src/crypto/token.rs), computed with Python's hmac:
    // hmac.new(b"Jefe", b"cofre/lookup/v1:4111111111111111", hashlib.sha256).hexdigest().
    assert_eq!(
        ok(&[
            "lookup-token",
            "--key",
            &hex::encode("Jefe"),
            "--pan",
            "4111111111111111"
        ]),
        "75af41ecdf9caf59f76cbca21535dd6ae0ccaa6e0dc4d7bba52f543d45424f75"
    );
}

#[test]
fn bad_input_exits_non_zero_with_one_line() {
    // Short PAN.
    let r = fails(&[
        "cvv",
        "--cvk",
        PVK,
        "--pan",
        "41234",
        "--expiry",
        "8701",
        "--service-code",
        "101",
    ]);
    assert!(r.contains("PAN"), "{r}");
    // Non-hex key: the reason names the problem and never echoes the key.
    let r = fails(&[
        "cvv",
        "--cvk",
        "0123456789ABCDEFFEDCBA987654321Z",
        "--pan",
        "4123456789012345",
        "--expiry",
        "8701",
        "--service-code",
        "101",
    ]);
    assert!(r.contains("hex") && !r.contains("0123456789ABCDEF"), "{r}");
    // Wrong key length.
    let r = fails(&[
        "pvv",
        "--pvk",
        "0123456789ABCDEF",
        "--pvki",
        "1",
        "--pin",
        "4524",
        "--pan",
        "1122334455667788",
    ]);
    assert!(r.contains("key length"), "{r}");
    let r = fails(&["kcv", "--key", "0011", "--algorithm", "aes"]);
    assert!(r.contains("key length"), "{r}");
    // Malformed PIN blocks: wrong control field, fill rule, length, non-hex.
    assert!(
        fails(&[
            "pinblock",
            "decode",
            "--format",
            "2",
            "--block",
            "041234FFFFFFFFFF"
        ])
        .contains("control field")
    );
    assert!(
        fails(&[
            "pinblock",
            "decode",
            "--format",
            "2",
            "--block",
            "241234FFFFFFFFF0"
        ])
        .contains("fill")
    );
    assert!(fails(&["pinblock", "decode", "--format", "2", "--block", "2412"]).contains("length"));
    assert!(
        fails(&[
            "pinblock",
            "decode",
            "--format",
            "0",
            "--block",
            "041277CDDEEFF66Z",
            "--pan",
            "5544332211009966"
        ])
        .contains("hex")
    );
    assert!(
        fails(&[
            "pinblock",
            "decode",
            "--format",
            "7",
            "--block",
            "041277CDDEEFF669"
        ])
        .contains("format")
    );
    // Format 4 without a key, PIN too short, wrong PVKI, bad decimalisation table.
    assert!(
        fails(&[
            "pinblock",
            "encode",
            "--format",
            "4",
            "--pin",
            "1234",
            "--pan",
            "1234567890123456"
        ])
        .contains("key")
    );
    let r = fails(&[
        "pinblock",
        "encode",
        "--format",
        "0",
        "--pin",
        "123",
        "--pan",
        "1234567890123456",
    ]);
    assert!(r.contains("PIN") && !r.contains("123 "), "{r}");
    assert!(
        fails(&[
            "pvv",
            "--pvk",
            PVK,
            "--pvki",
            "7",
            "--pin",
            "4524",
            "--pan",
            "1122334455667788"
        ])
        .contains("PVKI")
    );
    // A token that is not a token under this key.
    assert!(
        fails(&[
            "detoken",
            "--key",
            "2B7E151628AED2A6ABF7158809CF4F3C",
            "--token",
            "4111111111111111"
        ])
        .contains("token")
    );
    // Bad MAC data.
    assert!(
        fails(&[
            "mac",
            "--algorithm",
            "aes-cmac",
            "--key",
            "2b7e151628aed2a6abf7158809cf4f3c",
            "--data",
            "xyz"
        ])
        .contains("hex")
    );
}

// ANSI X9 TR-31:2018 Annex A.7.2.1 (version A), as in tests/vectors/published.md.
const TR31_A_KBPK: &str = "89E88CF7931444F334BD7547FC3F380C";
const TR31_A_BLOCK: &str =
    "A0072P0TE00E0000F5161ED902807AF26F1D62263644BD24192FDB3193C730301CEE8701";

#[test]
fn tr31_unwrap_wrap_and_tamper() {
    assert_eq!(
        ok(&[
            "tr31",
            "unwrap",
            "--kbpk",
            TR31_A_KBPK,
            "--block",
            TR31_A_BLOCK
        ]),
        "A0072P0TE00E0000 F039121BEC83D26B169BDCD5B22AAF8F CB9DEA"
    );
    // Wrap under an AES KBPK (version D) and read it back: the KBPK and key of ANSI X9
    // TR-31:2018 Annex A.7.4.
    let kbpk = "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6";
    let key = "3F419E1CB7079442AA37474C2EFBF8B8";
    let block = ok(&[
        "tr31",
        "wrap",
        "--kbpk",
        kbpk,
        "--header",
        "D0000P0AE00E0000",
        "--key",
        key,
    ]);
    assert!(block.starts_with("D0144P0AE00E0000"), "{block}");
    let line = ok(&["tr31", "unwrap", "--kbpk", kbpk, "--block", &block]);
    assert!(
        line.starts_with("D0144P0AE00E0000 3F419E1CB7079442AA37474C2EFBF8B8 "),
        "{line}"
    );
    // One changed character anywhere after the header is a MAC failure, and the message
    // does not show the KBPK or the key.
    let mut tampered = block.clone().into_bytes();
    let i = tampered.len() - 40;
    tampered[i] = if tampered[i] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let reason = fails(&["tr31", "unwrap", "--kbpk", kbpk, "--block", &tampered]);
    assert!(reason.contains("MAC"), "{reason}");
    assert!(!reason.contains(kbpk) && !reason.contains(key), "{reason}");
    // A version A block is never produced.
    let reason = fails(&[
        "tr31",
        "wrap",
        "--kbpk",
        TR31_A_KBPK,
        "--header",
        "A0000P0TE00E0000",
        "--key",
        key,
    ]);
    assert!(reason.contains("B and D"), "{reason}");
}

// Vectors 2, 4 and 5 of protocol/dcvv2.md (cofre's own specification, checked against
// the independent reference in tests/oracle/dcvv2_reference.py).
#[test]
fn dcvv2_counter_and_time_step() {
    assert_eq!(
        ok(&[
            "dcvv2",
            "--key",
            "2B7E151628AED2A6ABF7158809CF4F3C",
            "--pan",
            "6011000990139424123",
            "--expiry",
            "2706",
            "--counter",
            "81985529216486895",
        ]),
        "154"
    );
    assert_eq!(
        ok(&[
            "dcvv2",
            "--key",
            "404142434445464748494A4B4C4D4E4F",
            "--pan",
            "5555555555554444",
            "--expiry",
            "2909",
            "--unix-time",
            "1767225600",
        ]),
        "997"
    );
    assert_eq!(
        ok(&[
            "dcvv2",
            "--key",
            "606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F",
            "--pan",
            "4000000000000002",
            "--expiry",
            "3112",
            "--unix-time",
            "1800000123",
            "--t0",
            "1700000000",
            "--step",
            "600",
        ]),
        "238"
    );
    let reason = fails(&[
        "dcvv2",
        "--key",
        "404142434445464748494A4B4C4D4E4F",
        "--pan",
        "5555555555554444",
        "--expiry",
        "2913",
        "--counter",
        "1",
    ]);
    assert!(
        reason.contains("month") || reason.contains("expiry"),
        "{reason}"
    );
    assert!(!reason.contains("404142434445464748494A4B4C4D4E4F"));
}
