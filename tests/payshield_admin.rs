//! The payShield key commands that are key administration natively, against a live
//! daemon (real TLS, the example certificates and roles): `BU` is `key.list` (the
//! security officer's; a switch answers `17`), `A0` is `key.generate` (likewise) and
//! answers the new key's block, which the other commands then accept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;
mod payshield_common;

use cofre::protocol::{Opcode, Tag};
use daemon::Daemon;
use payshield_common::{Ps, block, block_for_missing_key, with_payshield};

/// `BU` answers the KCV `key.list` shows for the block's id and version, to the roles
/// that may list keys only.
#[test]
fn bu_answers_the_listed_kcv_to_roles_that_may_list_keys() {
    let d = Daemon::start_in(with_payshield("ps-bu", ""));
    let addr = d.payshield.clone().unwrap();
    let mut officer = Ps::tls(&addr, "security-officer-1");
    // 08D7B4: the published KCV of 0123456789ABCDEFFEDCBA9876543210 (zpk.example).
    assert_eq!(
        officer.call(&format!("0001BUFFF{}", block("zpk"))),
        "0001BV0008D7B4"
    );
    let mut native = d.connect("security-officer-1");
    let listing = native.call(Opcode::KeyList, |_| {}).str(Tag::Listing);
    let cvk_line = listing
        .lines()
        .find(|l| l.starts_with("cvk.example v1 "))
        .unwrap();
    let cvk_kcv = cvk_line.split("kcv=").nth(1).unwrap()[..6].to_owned();
    assert_eq!(
        officer.call(&format!("0002BUFFF{}", block("cvk"))),
        format!("0002BV00{cvk_kcv}")
    );
    // A block naming a key cofre does not hold; a block cut short; trailing data.
    let missing = block_for_missing_key();
    assert_eq!(officer.call(&format!("0003BUFFF{missing}")), "0003BV84");
    let zpk = block("zpk");
    assert_eq!(
        officer.call(&format!("0004BUFFF{}", &zpk[..zpk.len() - 1])),
        "0004BV83"
    );
    assert_eq!(officer.call(&format!("0005BUFFF{zpk};1")), "0005BV15");
    // Roles without key.list: refused, on a connection that stays open.
    for identity in ["atm-switch-1", "issuing-host-1"] {
        let mut c = Ps::tls(&addr, identity);
        assert_eq!(c.call(&format!("0006BUFFF{zpk}")), "0006BV17");
        assert!(c.call("0007NC").starts_with("0007ND00"));
    }
    let m = d.metrics_text();
    assert!(
        m.lines()
            .any(|l| l.contains("operation=\"key.list\"") && l.contains("not_authorised")),
        "{m}"
    );
}

/// `A0` as the security officer: the answer is the new key's block and KCV; the block
/// works in `BU` and, for a role that may use the key, in `CC` (there and back gives
/// the tour's block again). The same id twice, and a switch, are refused.
#[test]
fn a0_generates_a_key_and_answers_its_block() {
    let d = Daemon::start_in(with_payshield("ps-a0", ""));
    let addr = d.payshield.clone().unwrap();
    let mut officer = Ps::tls(&addr, "security-officer-1");
    let request = "0001A00FFFS#P0TB00N01010Ezpk.ps-new";
    let a = officer.call(request);
    assert!(a.starts_with("0001A100S"), "{a}");
    let (new, kcv) = a[8..].split_at(a.len() - 8 - 6);
    assert!(kcv.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
    assert_eq!(
        officer.call(&format!("0002BUFFF{new}")),
        format!("0002BV00{kcv}")
    );
    let listing = d
        .connect("security-officer-1")
        .call(Opcode::KeyList, |_| {})
        .str(Tag::Listing);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("zpk.ps-new v1 zpk tdes active")
                && l.contains(&format!("kcv={kcv}"))),
        "{listing}"
    );
    let audit = std::fs::read_to_string(d.dir.join("audit.log")).unwrap();
    assert!(audit.contains("zpk.ps-new"), "{audit}");
    // The same id again: refused by key.generate (`key_exists` on the id): 15.
    assert_eq!(officer.call(&request.replace("0001", "0003")), "0003A115");
    // The new ZPK in use: the tour's block to it and back.
    let zpk = block("zpk");
    let mut host = Ps::tls(&addr, "issuing-host-1");
    let to = host.call(&format!(
        "0004CC{zpk}{new}122A3D408A1977DDE90101111111111111"
    ));
    assert!(to.starts_with("0004CD0004"), "{to}");
    let under_new = &to[10..26];
    assert_ne!(under_new, "2A3D408A1977DDE9");
    assert_eq!(
        host.call(&format!("0005CC{new}{zpk}12{under_new}0101111111111111")),
        "0005CD00042A3D408A1977DDE901"
    );
    // A switch may not generate keys.
    let mut switch = Ps::tls(&addr, "atm-switch-1");
    assert_eq!(
        switch.call("0006A00FFFS#P0TB00N010110zpk.ps-other"),
        "0006A117"
    );
    // The new block and the PIN blocks are in the answers (positive control), never in
    // the daemon's log.
    let log = d.log_text();
    for s in [&new[40..], under_new] {
        assert!(a.contains(s) || to.contains(s), "positive control: {s}");
        assert!(!log.contains(s), "{s} in the daemon log");
    }
    let m = d.metrics_text();
    assert!(
        m.lines()
            .any(|l| l.contains("operation=\"key.generate\"") && l.contains("status=\"ok\"")),
        "{m}"
    );
}
