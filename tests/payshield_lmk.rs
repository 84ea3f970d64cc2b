//! The payShield commands on the PIN under the LMK (`JA`, `JG`, `JE`, `DG`, `DE`)
//! against a live daemon (real TLS, the example keys and roles). A random PIN is
//! checked by its properties, never a fixed answer: its length and digits (read back
//! through `JG` under the example ZPK, whose clear value keys-example/README.md
//! publishes), its spread over many calls, two calls differing, the weak-PIN policy,
//! and the chain an issuer runs: `JA`, then `DG`/`DE` for its PVV or offset, then `JG`
//! for a PIN block that `EC`/`EA` verify. None of them touches the card's PIN tries.
//! The golden frames of these commands are replayed by tests/payshield.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;
mod payshield_common;

use std::collections::HashSet;

use cofre::crypto::cipher::BlockCipher;
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{Format, PinBlock, decipher};
use cofre::protocol::{Opcode, Status, Tag};
use daemon::Daemon;
use payshield_common::{Ps, block, with_payshield};

const DECIMALISATION: &str = "0123456789012345";

/// The PIN in a format 0 block under the example ZPK, for the card `account` names
/// (the test reads it back only to check the properties of a random PIN).
fn pin_of(account: &str, block_hex: &str) -> String {
    let zpk = hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap();
    let k = BlockCipher::tdes(&zpk).unwrap();
    let b = PinBlock::from_bytes(&hex::decode(block_hex).unwrap()).unwrap();
    let pan = Pan::new(&format!("{account}0")).unwrap();
    decipher(Format::Iso0, &k, &b, Some(&pan))
        .unwrap()
        .expose_secret()
        .to_owned()
}

/// The answer's fields after a `00`, or the error code.
fn fields<'a>(answer: &'a str, response: &str) -> Result<&'a str, &'a str> {
    assert_eq!(&answer[4..6], response, "{answer}");
    match &answer[6..8] {
        "00" => Ok(&answer[8..]),
        e => Err(e),
    }
}

#[test]
fn random_pins_have_the_length_asked_for_spread_over_digits_and_differ() {
    let d = Daemon::start_in(with_payshield("ps-lmk-random", ""));
    let addr = d.payshield.clone().unwrap();
    let mut c = Ps::tls(&addr, "issuing-host-1");
    let zpk = block("zpk");
    let account = "400000123456";
    // 400 JA pipelined in one write, then their JG.
    let n = 400;
    let ja: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("{i:04}JA{account}04").into_bytes())
        .collect();
    c.send_all(&ja);
    let blobs: Vec<String> = (0..n)
        .map(|_| fields(&c.read().unwrap(), "JB").unwrap().to_owned())
        .collect();
    assert!(blobs.iter().all(|b| b.len() == 50));
    assert_eq!(
        blobs.iter().collect::<HashSet<_>>().len(),
        n,
        "blobs repeat"
    );
    let jg: Vec<Vec<u8>> = blobs
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{i:04}JG{zpk}01{account}{b}").into_bytes())
        .collect();
    c.send_all(&jg);
    let pins: Vec<String> = (0..n)
        .map(|_| pin_of(account, fields(&c.read().unwrap(), "JH").unwrap()))
        .collect();
    assert!(
        pins.iter()
            .all(|p| p.len() == 4 && p.bytes().all(|b| b.is_ascii_digit()))
    );
    // Two calls differ: about 8 repeats are expected among 400 draws of ~9,980 PINs.
    let distinct = pins.iter().collect::<HashSet<_>>().len();
    assert!(distinct >= n - 30, "{distinct} distinct PINs of {n}");
    // Every digit about as often as the others (160 expected of 1,600; bounds far
    // outside chance).
    let mut counts = [0usize; 10];
    for p in &pins {
        for b in p.bytes() {
            counts[usize::from(b - b'0')] += 1;
        }
    }
    assert!(
        counts.iter().all(|&k| (80..=240).contains(&k)),
        "{counts:?}"
    );
    // The example set's weak-PIN policy (keys-example/hsm.toml: repeated digits and an
    // excluded list; sequences off there) holds for every draw.
    let excluded = ["1004", "2000", "2580", "0852", "1212", "6969"];
    for p in &pins {
        let d: Vec<u8> = p.bytes().collect();
        assert!(d.iter().any(|&x| x != d[0]), "{p}");
        assert!(!excluded.contains(&p.as_str()), "{p}");
    }
    // Other lengths, and the default (4).
    for (len, field) in [(12, "12"), (6, "06"), (4, "")] {
        let blob = fields(&c.call(&format!("0001JA{account}{field}")), "JB")
            .unwrap()
            .to_owned();
        let pin = pin_of(
            account,
            fields(&c.call(&format!("0002JG{zpk}01{account}{blob}")), "JH").unwrap(),
        );
        assert_eq!(pin.len(), len, "length {field}");
    }
}

#[test]
fn an_issuers_chain_verifies_and_no_command_touches_the_tries() {
    let d = Daemon::start_in(with_payshield("ps-lmk-chain", ""));
    let addr = d.payshield.clone().unwrap();
    let mut c = Ps::tls(&addr, "issuing-host-1");
    let (zpk, pvk) = (block("zpk"), block("pvk"));
    let account = "400000654321";
    let validation = format!("{}NFFFF", &account[..7]);
    // A random PIN, its PVV and offset, its block under the ZPK.
    let blob = fields(&c.call(&format!("0001JA{account}06")), "JB")
        .unwrap()
        .to_owned();
    let pvv = fields(&c.call(&format!("0002DG{pvk}{blob}{account}1")), "DH")
        .unwrap()
        .to_owned();
    assert!(
        pvv.len() == 4 && pvv.bytes().all(|b| b.is_ascii_digit()),
        "{pvv}"
    );
    let offset = fields(
        &c.call(&format!(
            "0003DE{pvk}{blob}06{account}{DECIMALISATION}{validation}"
        )),
        "DF",
    )
    .unwrap()
    .to_owned();
    assert!(offset.ends_with("FFFFFF") && offset[..6].bytes().all(|b| b.is_ascii_digit()));
    let pin_block = fields(&c.call(&format!("0004JG{zpk}01{account}{blob}")), "JH")
        .unwrap()
        .to_owned();
    // One wrong PIN counted first: the PIN commands below must leave it at one.
    let wrong_pvv = format!("{:04}", (pvv.parse::<u32>().unwrap() + 1) % 10_000);
    let ec = |pvv: &str| format!("0005EC{zpk}{pvk}{pin_block}01{account}1{pvv}");
    assert_eq!(c.call(&ec(&wrong_pvv)), "0005ED01");
    let card = format!("{account}0");
    let attempts = || {
        let r = d.connect("issuing-host-1").call(Opcode::PinAttempts, |w| {
            w.str(Tag::Pan, &card);
        });
        assert_eq!(r.status(), Status::Ok);
        r.u32(Tag::Attempts)
    };
    assert_eq!(attempts(), 1);
    let je = fields(&c.call(&format!("0006JE{zpk}{pin_block}01{account}")), "JF")
        .unwrap()
        .to_owned();
    assert_ne!(je, blob, "a new blob has new random fill");
    // The re-sealed PIN is the same PIN: the same PVV and the same block.
    assert_eq!(
        c.call(&format!("0007DG{pvk}{je}{account}1")),
        format!("0007DH00{pvv}")
    );
    assert_eq!(
        c.call(&format!("0008JG{zpk}01{account}{je}")),
        format!("0008JH00{pin_block}")
    );
    assert_eq!(
        fields(&c.call(&format!("0009JA{account}")), "JB").map(str::len),
        Ok(50)
    );
    assert_eq!(attempts(), 1, "JA, JE, JG, DG, DE touch no counter");
    // The chain verifies: EC with DG's PVV, EA with DE's offset (check length 6).
    assert_eq!(c.call(&ec(&pvv)), "0005ED00");
    assert_eq!(attempts(), 0);
    let ea =
        format!("0010EA{zpk}{pvk}12{pin_block}0106{account}{DECIMALISATION}{validation}{offset}");
    assert_eq!(c.call(&ea), "0010EB00");
    // A blob opens only for its own account (14), and not once altered.
    let other = "400000654322";
    assert_eq!(c.call(&format!("0011DG{pvk}{blob}{other}1")), "0011DH14");
    let mut altered = blob.clone().into_bytes();
    altered[20] = if altered[20] == b'0' { b'1' } else { b'0' };
    let altered = String::from_utf8(altered).unwrap();
    assert_eq!(
        c.call(&format!("0012JG{zpk}01{account}{altered}")),
        "0012JH14"
    );
    // A locked card stays locked: a new random PIN, a PVV or a re-sealed PIN for it
    // changes nothing (only the native reset or pin.generate unlock).
    let mut locked = false;
    for _ in 0..10 {
        if c.call(&ec(&wrong_pvv)) == "0005ED39" {
            locked = true;
            break;
        }
    }
    assert!(locked, "the card never locked");
    assert!(c.call(&format!("0017JA{account}")).starts_with("0017JB00"));
    assert_eq!(
        c.call(&format!("0018DG{pvk}{blob}{account}1")),
        format!("0018DH00{pvv}")
    );
    assert!(
        c.call(&format!("0019JE{zpk}{pin_block}01{account}"))
            .starts_with("0019JF00")
    );
    assert_eq!(c.call(&ec(&pvv)), "0005ED39");
    // The ATM switch's role has pin.translate (JG, JE) but not pin.random or
    // pin.reference: JA, DG and DE are 17.
    let mut atm = Ps::tls(&addr, "atm-switch-1");
    assert_eq!(atm.call(&format!("0013JA{account}")), "0013JB17");
    assert_eq!(
        atm.call(&format!("0014DG{pvk}{blob}{account}1")),
        "0014DH17"
    );
    assert_eq!(
        atm.call(&format!(
            "0015DE{pvk}{blob}06{account}{DECIMALISATION}{validation}"
        )),
        "0015DF17"
    );
    assert_eq!(
        atm.call(&format!("0016JG{zpk}01{account}{blob}")),
        format!("0016JH00{pin_block}")
    );
    // Counted under the native operations; no blob or PIN block in the log (the same
    // search finds each in a request sent above: the positive control).
    let m = d.metrics_text();
    for op in ["pin.random", "pin.reference", "pin.translate"] {
        assert!(
            m.lines()
                .any(|l| l.contains(&format!("operation=\"{op}\"")) && l.contains("status=\"ok\"")),
            "{op}: {m}"
        );
    }
    let sent = [
        format!("0007DG{pvk}{je}{account}1"),
        format!("0004JG{zpk}01{account}{blob}"),
        ec(&pvv),
    ]
    .concat();
    let log = d.log_text();
    assert!(!log.is_empty());
    for s in [&blob, &je, &pin_block] {
        assert!(sent.contains(s.as_str()), "positive control: {s}");
        assert!(!log.contains(s.as_str()), "{s} in the daemon log");
    }
}
