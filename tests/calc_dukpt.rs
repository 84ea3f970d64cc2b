//! `cofre calc dukpt` end to end, run as a person would: one result line on stdout for
//! each documented form, checked against the published vectors (ANSI X9.24-1:2009 A.4 and
//! the X9.24-3-2017 test vectors; sources in `tests/dukpt_vectors_*.rs`); each bad input
//! one line on stderr, exit status 1 (2 for usage errors), never echoing a key or PIN.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const TDES_BDK: &str = "0123456789ABCDEFFEDCBA9876543210";
const TDES_KSN: &str = "FFFF9876543210E00001";
const AES_BDK: &str = "FEDCBA9876543210F1F1F1F1F1F1F1F1";
const AES256_BDK: &str = "FEDCBA9876543210F1F1F1F1F1F1F1F1FEDCBA9876543210F1F1F1F1F1F1F1F1";
const AES_KSN: &str = "123456789012345600000001";

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
        .args(["calc", "dukpt"])
        .args(args)
        .output()
        .expect("run cofre");
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, Some(0), "{args:?} failed: {stderr}");
    assert_eq!(stdout.lines().count(), 1, "one line of output: {stdout:?}");
    stdout.trim_end().to_owned()
}

/// A refused input: exit 1, nothing on stdout, one line on stderr, returned.
fn fails(args: &[&str]) -> String {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, Some(1), "{args:?}: {stderr}");
    assert!(stdout.is_empty(), "{stdout:?}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr:?}");
    stderr.trim_end().to_owned()
}

// ANSI X9.24-1:2009 Annex A.4.1 (IPEK) and A.4.2 (counter 1: transaction key, PIN
// block of PIN 1234, PAN 4012345678909), Table A-1 (PIN variant); tests/vectors/published.md.
#[test]
fn tdes_forms_reproduce_x9_24_1_annex_a() {
    let bdk = ["--bdk", TDES_BDK, "--ksn", TDES_KSN];
    assert_eq!(
        ok(&[&["initial-key"], &bdk[..]].concat()),
        "6AC292FAA1315B4D858AB3A3D7D5933A"
    );
    assert_eq!(
        ok(&[&["transaction-key"], &bdk[..]].concat()),
        "042666B49184CFA368DE9628D0397BC9"
    );
    // The same from the IPEK instead of the BDK.
    let ipek = [
        "--initial-key",
        "6AC292FAA1315B4D858AB3A3D7D5933A",
        "--ksn",
        TDES_KSN,
    ];
    assert_eq!(
        ok(&[&["transaction-key"], &ipek[..]].concat()),
        "042666B49184CFA368DE9628D0397BC9"
    );
    // Table A-1: the PIN variant flips byte 7 of each half.
    assert_eq!(
        ok(&[&["working-key", "--usage", "pin"], &bdk[..]].concat()),
        "042666B49184CF5C68DE9628D0397B36"
    );
    let block = ok(&[
        &["pinblock", "encode", "--format", "0", "--pin", "1234"],
        &["--pan", "4012345678909"][..],
        &bdk[..],
    ]
    .concat());
    assert_eq!(block, "1B9C1845EB993A7A");
    let pin = ok(&[
        &["pinblock", "decode", "--format", "0", "--block", &block],
        &["--pan", "4012345678909"][..],
        &ipek[..],
    ]
    .concat());
    assert_eq!(pin, "1234");
    // Format 3 has random fill: check by round trip.
    let block = ok(&[
        &["pinblock", "encode", "--format", "3", "--pin", "987654"],
        &["--pan", "4012345678909"][..],
        &bdk[..],
    ]
    .concat());
    let pin = ok(&[
        &["pinblock", "decode", "--format", "3", "--block", &block],
        &["--pan", "4012345678909"][..],
        &bdk[..],
    ]
    .concat());
    assert_eq!(pin, "987654");
}

// The test vectors published with ANSI X9.24-3-2017 (supplement), counter 1 of the AES-128
// and AES-256 BDKs: initial key, transaction key, working keys, format 4 PIN block;
// tests/vectors/published.md and tests/dukpt_vectors_aes.rs.
#[test]
fn aes_forms_reproduce_x9_24_3_vectors() {
    let bdk = ["--bdk", AES_BDK, "--ksn", AES_KSN];
    assert_eq!(
        ok(&[&["initial-key"], &bdk[..]].concat()),
        "1273671EA26AC29AFA4D1084127652A1"
    );
    assert_eq!(
        ok(&[&["transaction-key"], &bdk[..]].concat()),
        "4F21B565BAD9835E112B6465635EAE44"
    );
    for (usage, key_type, expected) in [
        ("pin", None, "AF8CB133A78F8DC2D1359F18527593FB"),
        ("mac-generate", None, "A2DC23DE6FDE0824A2BC321E08E4B8B7"),
        (
            "data-encrypt",
            Some("aes128"),
            "A35C412EFD41FDB98B69797C02DCD08F",
        ),
        ("pin", Some("tdes2"), "630C706D9546E47D4449313F61C4D4AB"),
    ] {
        let mut args = vec!["working-key", "--usage", usage];
        if let Some(t) = key_type {
            args.extend(["--key-type", t]);
        }
        args.extend(bdk);
        assert_eq!(ok(&args), expected, "{usage} {key_type:?}");
    }
    let aes256 = ["--bdk", AES256_BDK, "--ksn", AES_KSN];
    assert_eq!(
        ok(&[
            &["working-key", "--usage", "pin", "--key-type", "aes256"],
            &aes256[..]
        ]
        .concat()),
        "8C1AB7BEE973829E30242E0BBBDD4946D540C98FC1B5BDCF94790001A23FD502"
    );
    // The published format 4 block of counter 1 (PIN 1234, PAN 4111111111111111).
    let pan = ["--pan", "4111111111111111"];
    let decoded = ok(&[
        &["pinblock", "decode", "--format", "4"][..],
        &["--block", "A912150391AB65A67E52883D81CE2D15"],
        &pan[..],
        &bdk[..],
    ]
    .concat());
    assert_eq!(decoded, "1234");
    let block = ok(&[
        &["pinblock", "encode", "--format", "4", "--pin", "55555"][..],
        &pan[..],
        &[
            "--initial-key",
            "1273671EA26AC29AFA4D1084127652A1",
            "--ksn",
            AES_KSN,
        ],
    ]
    .concat());
    assert_eq!(block.len(), 32);
    let decoded = ok(&[
        &["pinblock", "decode", "--format", "4", "--block", &block][..],
        &pan[..],
        &bdk[..],
    ]
    .concat());
    assert_eq!(decoded, "55555");
}

#[test]
fn refusals_are_one_line_and_never_echo_secrets() {
    // Counter rules, each with its own reason.
    let r = fails(&[
        "transaction-key",
        "--bdk",
        TDES_BDK,
        "--ksn",
        "FFFF9876543210E00000",
    ]);
    assert!(r.contains("counter is 0"), "{r}");
    let r = fails(&[
        "transaction-key",
        "--bdk",
        TDES_BDK,
        "--ksn",
        "FFFF9876543210FFFFFF",
    ]);
    assert!(r.contains("exhausted"), "{r}");
    let r = fails(&[
        "transaction-key",
        "--bdk",
        TDES_BDK,
        "--ksn",
        "FFFF9876543210E007FF",
    ]);
    assert!(r.contains("more than 10 one-bits"), "{r}");
    let r = fails(&[
        "transaction-key",
        "--bdk",
        AES_BDK,
        "--ksn",
        "12345678901234560001FFFF",
    ]);
    assert!(r.contains("more than 16 one-bits"), "{r}");
    let r = fails(&[
        "transaction-key",
        "--bdk",
        AES_BDK,
        "--ksn",
        "1234567890123456FFFF0001",
    ]);
    assert!(r.contains("exhausted"), "{r}");
    // KSN shape.
    let r = fails(&["transaction-key", "--bdk", AES_BDK, "--ksn", "1234"]);
    assert!(r.contains("KSN") && r.contains("20 hex"), "{r}");
    let r = fails(&[
        "transaction-key",
        "--bdk",
        AES_BDK,
        "--ksn",
        "FFFF9876543210E0000Z",
    ]);
    assert!(r.contains("KSN is not valid hex"), "{r}");
    // Keys: a triple-length TDES BDK, a bad AES length, non-hex; none echoed.
    let triple = format!("{TDES_BDK}0123456789ABCDEF");
    let r = fails(&["initial-key", "--bdk", &triple, "--ksn", TDES_KSN]);
    assert!(r.contains("key length") && !r.contains(TDES_BDK), "{r}");
    let r = fails(&[
        "initial-key",
        "--bdk",
        "00112233445566778899",
        "--ksn",
        AES_KSN,
    ]);
    assert!(r.contains("key length") && !r.contains("0011223344"), "{r}");
    let r = fails(&[
        "initial-key",
        "--bdk",
        "0123456789ABCDEFFEDCBA987654321X",
        "--ksn",
        AES_KSN,
    ]);
    assert!(r.contains("hex") && !r.contains("0123456789ABCDEF"), "{r}");
    // Working key types and usages the variant does not have.
    let aes = ["--bdk", AES_BDK, "--ksn", AES_KSN];
    let r = fails(
        &[
            &["working-key", "--usage", "pin", "--key-type", "aes256"],
            &aes[..],
        ]
        .concat(),
    );
    assert!(r.contains("AES-256") && r.contains("AES-128"), "{r}");
    let r = fails(&[&["working-key", "--usage", "mac-request"], &aes[..]].concat());
    assert!(r.contains("AES DUKPT usages"), "{r}");
    let tdes = ["--bdk", TDES_BDK, "--ksn", TDES_KSN];
    let r = fails(&[&["working-key", "--usage", "mac-generate"], &tdes[..]].concat());
    assert!(r.contains("TDES DUKPT usages"), "{r}");
    let r = fails(
        &[
            &["working-key", "--usage", "pin", "--key-type", "aes128"],
            &tdes[..],
        ]
        .concat(),
    );
    assert!(r.contains("tdes2"), "{r}");
    // PIN blocks: format 2, format 4 under TDES DUKPT, a wrong KSN's key; no PIN echoed.
    let r = fails(
        &[
            &["pinblock", "encode", "--format", "2", "--pin", "8642"][..],
            &tdes[..],
        ]
        .concat(),
    );
    assert!(r.contains("format 2") && !r.contains("8642"), "{r}");
    let r = fails(
        &[
            &["pinblock", "encode", "--format", "4", "--pin", "8642"][..],
            &["--pan", "4111111111111111"],
            &tdes[..],
        ]
        .concat(),
    );
    assert!(r.contains("format 4") && !r.contains("8642"), "{r}");
    let r = fails(
        &[
            &[
                "pinblock",
                "decode",
                "--format",
                "0",
                "--block",
                "1B9C1845EB993A7A",
            ][..],
            &[
                "--pan",
                "4012345678909",
                "--bdk",
                TDES_BDK,
                "--ksn",
                "FFFF9876543210E00002",
            ],
        ]
        .concat(),
    );
    assert!(r.contains("PIN block"), "{r}");
    // Positive control for the echo checks: the same search finds the key where it is.
    assert!(triple.contains(TDES_BDK));
}

#[test]
fn usage_errors_exit_2() {
    // Neither --bdk nor --initial-key, and both.
    let (code, _, _) = run(&["transaction-key", "--ksn", TDES_KSN]);
    assert_eq!(code, Some(2));
    let (code, _, _) = run(&[
        "transaction-key",
        "--bdk",
        TDES_BDK,
        "--initial-key",
        TDES_BDK,
        "--ksn",
        TDES_KSN,
    ]);
    assert_eq!(code, Some(2));
    let (code, _, _) = run(&["working-key", "--usage", "nonsense", "--bdk", TDES_BDK]);
    assert_eq!(code, Some(2));
}

// The PIN key type the protocol's `pin_key_type` names (protocol/README.md, "DUKPT
// input"), on the command line: the X9.24-3-2017 AES-256 PIN key of counter 1 (published)
// and its format 4 block of the supplement's PIN field (tests/vectors/published.md), and
// an AES-192 PIN key from the AES-256 BDK (no published value: the one
// tests/dukpt_vectors_aes.rs pins, on which two independent implementations agree).
#[test]
fn every_aes_pin_key_size_is_chosen_by_key_type() {
    let aes256 = ["--bdk", AES256_BDK, "--ksn", AES_KSN];
    let pan = ["--pan", "4111111111111111"];
    let decode = |key_type: &[&str], block: &str| {
        run(&[
            &["pinblock", "decode", "--format", "4", "--block", block][..],
            key_type,
            &pan[..],
            &aes256[..],
        ]
        .concat())
    };
    let published = "B9346D129E53FFC0759FC82331CBE9F7";
    let (code, stdout, _) = decode(&["--key-type", "aes256"], published);
    assert_eq!((code, stdout.trim_end()), (Some(0), "1234"));
    // The default PIN key (AES-128) and AES-192 do not decode it.
    for key_type in [&[][..], &["--key-type", "aes192"]] {
        let (code, stdout, stderr) = decode(key_type, published);
        assert_eq!(code, Some(1), "{key_type:?}: {stdout}");
        assert!(!stderr.contains("1234"), "{stderr}");
    }
    assert_eq!(
        ok(&[
            &["working-key", "--usage", "pin", "--key-type", "aes192"],
            &aes256[..]
        ]
        .concat()),
        "DD73FB55862AB1CA815FF5CEE50E3135768D16805F5EC33A"
    );
    // A terminal's block under an AES-192 PIN key round-trips, with that key type only.
    let block = ok(&[
        &["pinblock", "encode", "--format", "4", "--pin", "24680"][..],
        &["--key-type", "aes192"],
        &pan[..],
        &aes256[..],
    ]
    .concat());
    let (code, stdout, _) = decode(&["--key-type", "aes192"], &block);
    assert_eq!((code, stdout.trim_end()), (Some(0), "24680"));
    // (The strict format 4 decoder refuses it, or at worst reads another PIN.)
    let (code, stdout, _) = decode(&["--key-type", "aes256"], &block);
    assert!(code == Some(1) || stdout.trim_end() != "24680", "{code:?}");
    // Stronger than the BDK: refused, naming both types.
    let r = fails(
        &[
            &["pinblock", "encode", "--format", "4", "--pin", "8642"][..],
            &["--key-type", "aes192"],
            &pan[..],
            &["--bdk", AES_BDK, "--ksn", AES_KSN],
        ]
        .concat(),
    );
    assert!(
        r.contains("AES-192") && r.contains("AES-128") && !r.contains("8642"),
        "{r}"
    );
}
