//! The specification checked by an independent implementation written from it alone:
//! `tests/oracle/protocol_vectors.py` (with protocol_model.py and protocol_ops.py) reads
//! protocol/*.md and keys-example/, decides what the daemon must answer to every golden
//! frame of protocol/vectors/, and compares; `tests/oracle/ff1_tokens.py` (FF1 from NIST
//! SP 800-38G, checked against the NIST samples) makes tokens and lookup tokens from
//! algorithms.md, compared here with cofre's over seeded random PANs of every length.
//! A missing oracle fails these tests (see `common::oracle_python`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cofre::crypto::ClearKey;
use cofre::crypto::pan::{self, Pan};
use cofre::crypto::token::{Alphabet, TokenKey, lookup_token};
use rand::{Rng, RngExt};
use serde_json::json;

const MODULES: &[&str] = &["psec", "cryptography", "pydukpt"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `tests/oracle/<script> <args>`: exit success, stdout, stderr.
fn run(python: &Path, script: &str, args: &[&Path]) -> (bool, String, String) {
    let out = Command::new(python)
        .arg(root().join("tests/oracle").join(script))
        .args(args)
        .output()
        .expect("run the oracle");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn vector_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .matches("\nrequest ")
                .count()
        })
        .sum()
}

#[test]
#[cfg_attr(
    skip_oracle,
    ignore = "COFRE_SKIP_ORACLE=1: differential oracle skipped on request"
)]
fn every_golden_frame_follows_from_the_specification() {
    let python = common::oracle_python(MODULES);
    let vectors = root().join("protocol/vectors");
    let (ok, out, err) = run(&python, "protocol_vectors.py", &[&vectors]);
    assert!(
        ok,
        "the specification's answers differ from the golden frames:\n{err}"
    );
    let n = vector_count(&vectors);
    assert!(n >= 70, "{n} vectors");
    assert_eq!(out.trim(), format!("{n} vectors reproduced"));
}

/// The negative control: golden frames with one computed value, one status and one
/// `field` altered are caught, each named.
#[test]
#[cfg_attr(
    skip_oracle,
    ignore = "COFRE_SKIP_ORACLE=1: differential oracle skipped on request"
)]
fn an_altered_golden_frame_is_caught() {
    let python = common::oracle_python(MODULES);
    let dir = std::env::temp_dir().join(format!("cofre-spec-oracle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(root().join("protocol/vectors")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let alter = |file: &str, from: &str, to: &str| {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}: {from}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    // The CVV of cvv.generate (812 -> 813), an expiry refusal's field (expiry 0x20 ->
    // service_code 0x21), and the status of the PVV's 4-leftmost-digits rule (ok ->
    // verification_failed).
    alter("card.txt", "000338313223", "000338313323");
    alter("errors.txt", "F1000120", "F1000121");
    let pin = std::fs::read_to_string(dir.join("pin.txt")).unwrap();
    let block = pin
        .split("\n\n")
        .find(|b| b.contains("PIN 123499"))
        .unwrap();
    let response = block.lines().find(|l| l.starts_with("response")).unwrap();
    alter(
        "pin.txt",
        response,
        &response.replacen("0000050004", "0001050004", 1),
    );
    // The published X9.24-3 block's verification (ok -> verification_failed).
    alter(
        "pin_dukpt.txt",
        "00000018010200200000004A000005",
        "00000018010200200000004A000105",
    );
    let (ok, _, err) = run(&python, "protocol_vectors.py", &[&dir]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok, "altered frames must fail");
    for name in [
        "cvv.generate, expiry 2812",
        "expiry 1328",
        "PIN 123499 against the PVV",
        "X9.24-3 format 4 block",
    ] {
        assert!(err.contains(name), "{name} not named:\n{err}");
    }
}

/// Tokens and lookup tokens of every PAN length and both alphabets, cofre's against the
/// independent implementation of algorithms.md ("PAN tokens", "Lookup tokens").
#[test]
#[cfg_attr(
    skip_oracle,
    ignore = "COFRE_SKIP_ORACLE=1: differential oracle skipped on request"
)]
fn tokens_agree_with_the_independent_ff1() {
    let python = common::oracle_python(MODULES);
    let (ok, out, err) = run(&python, "ff1_tokens.py", &[Path::new("--self-test")]);
    assert!(ok && out.contains("NIST samples 1-9 agree"), "{out}{err}");
    let mut rng = common::test_rng(18);
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for i in 0..480 {
        let key_len = [16, 24, 32][i % 3];
        let mut key = vec![0u8; key_len];
        rng.fill_bytes(&mut key);
        let tk = TokenKey::new(&ClearKey::from_bytes(&key).unwrap()).unwrap();
        let len = 12 + i % 8;
        let bin_len = rng.random_range(1..=6);
        let bin: String = (0..bin_len)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        let p: Pan = pan::generate(&bin, len, &mut rng).unwrap();
        let (alphabet, code) = if i % 2 == 0 {
            (Alphabet::Numeric, 0)
        } else {
            (Alphabet::Alphanumeric, 1)
        };
        let token = tk.tokenise(&p, alphabet).unwrap();
        assert_eq!(tk.detokenise(&token, alphabet).unwrap(), p);
        let key_hex = hex::encode_upper(&key);
        cases.push(json!({"op": "tokenise", "key": key_hex, "pan": p.digits(), "alphabet": code}));
        cases.push(json!({"op": "detokenise", "key": key_hex, "token": token, "alphabet": code}));
        cases.push(json!({"op": "lookup", "key": key_hex, "pan": p.digits()}));
        let lookup = lookup_token(&ClearKey::from_bytes(&key).unwrap(), &p);
        ours.push(json!({"token": token}));
        ours.push(json!({"pan": p.digits()}));
        ours.push(json!({"lookup": lookup}));
    }
    let theirs = common::run_oracle(&python, "ff1_tokens.py", &cases);
    for ((case, ours), theirs) in cases.iter().zip(&ours).zip(&theirs) {
        assert_eq!(ours, theirs, "{case}");
    }
}
