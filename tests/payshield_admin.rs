//! The payShield key commands that are key administration natively, against a live
//! daemon (real TLS, the example certificates and roles): `BU` is `key.list` (the
//! security officer's; a switch answers `17`).
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
