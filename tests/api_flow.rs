//! The whole issuing flow over HTTP against real `cofre hsm` and `cofre api` processes,
//! on SQLite and on PostgreSQL: customer -> account -> card -> activation -> PIN
//! validation (right, wrong, lockout) -> security codes decrypted here with the transport
//! key and checked with `cofre calc` -> dynamic CVV2 (checked at the daemon) -> reissue.
//! (The mass issue of 1,000 cards is `tests/api_mass.rs`.) Then the secrecy checks: the
//! database dump and the facade's debug log hold none of the clear values the test
//! learned (PAN, PIN block, CVV text, keys).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use api::daemon::Raw;
use api::flow::*;
use api::{CLIENT_1, Db, System};
use cofre::protocol::{Opcode, Status, Tag};
use serde_json::json;

fn whole_flow(db: Db) {
    let Some(sys) = System::start("api-flow", db) else {
        return;
    };
    let c = sys.client(CLIENT_1);
    let card = issue_card(&c, "39053344705");
    let pan = clear_pan(&sys, &card);
    assert_eq!(pan.len(), 16);
    assert!(pan.starts_with("455555"));

    // Security codes, decrypted and checked against `cofre calc`; the PIN comes with them.
    let (pin, cvv2) = security_codes(&sys, &c, &card, &pan);
    let expiry = card_column(&sys, &card, "expiry");

    // PIN validation: right, wrong, lockout (the right PIN is then refused too).
    validate(&c, &card, &iso0(&pin, &pan))
        .expect(200)
        .check("POST", "/cards/pin/validation");
    let wrong = if pin == "1234" { "4321" } else { "1234" };
    for _ in 0..2 {
        let r = validate(&c, &card, &iso0(wrong, &pan));
        r.expect(422).check("POST", "/cards/pin/validation");
        assert_eq!(r.code(), "invalid_pin");
    }
    let r = validate(&c, &card, &iso0(wrong, &pan));
    r.expect(422);
    assert!(
        ["invalid_pin", "pin_locked"].contains(&r.code().as_str()),
        "{}",
        r.text
    );
    let r = validate(&c, &card, &iso0(&pin, &pan));
    r.expect(422);
    assert_eq!(r.code(), "pin_locked");
    assert_eq!(attempts(&c, &card)["blockedIndicator"], "B");
    pin_status(&c, &card, "U").expect(200);
    validate(&c, &card, &iso0(&pin, &pan)).expect(200);

    // Static CVV2 works at the daemon until a dynamic CVV2 is asked for.
    let mut host: Raw = sys.hsm.connect("issuing-host-1");
    let static_check = |host: &mut Raw| {
        host.call(Opcode::CvvVerify, |w| {
            w.str(Tag::Token, card.trim_start_matches('0'))
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, &expiry)
                .str(Tag::ServiceCode, "000")
                .str(Tag::Cvv, &cvv2);
        })
    };
    assert_eq!(static_check(&mut host).status(), Status::Ok);
    let r = c.call(
        "POST",
        "/cards/pin/dynamic-values",
        &json!({"organizationNumber": 800, "cardNumber": card, "channel": "W", "keyAssociation": "IYY", "disableDCVV2": "N"}),
    );
    r.expect(200).check("POST", "/cards/pin/dynamic-values");
    let dcvv2 = r.json["dcvv2"]
        .as_str()
        .or_else(|| r.json["outputArea"]["dcvv2"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no dcvv2 in {}", r.text));
    let v = host.call(Opcode::Dcvv2Verify, |w| {
        w.str(Tag::Token, card.trim_start_matches('0'))
            .str(Tag::Key, "dcvv2.example")
            .str(Tag::Expiry, &expiry)
            .str(Tag::Dcvv2, &dcvv2);
    });
    assert_eq!(v.status(), Status::Ok, "{}", v.message());
    assert_eq!(static_check(&mut host).status(), Status::VerificationFailed);

    // Reissue for loss: the old card is blocked at once and fails PIN validation.
    let r = c.call(
        "PUT",
        "/cards/embosser/cardAction-L8V2",
        &json!({"organizationNumber": 800, "cardNumber": card, "cardAction": 3,
            "randomPin": 1, "cardActionReason": "L"}),
    );
    r.expect(200)
        .check("PUT", "/cards/embosser/cardAction-L8V2");
    let r = validate(&c, &card, &iso0(&pin, &pan));
    r.expect(422);
    assert!(
        ["card_blocked", "card_not_active"].contains(&r.code().as_str()),
        "{}",
        r.text
    );

    // Secrecy: nothing clear at rest or in the debug log.
    let dump = sys.dump_database();
    let log = sys.api_log();
    let clear_block = iso0(&pin, &pan);
    for (what, secret) in [
        ("PAN", pan.as_str()),
        ("PAN digits 7-15", &pan[6..15]),
        ("transport key", TRANSPORT),
        ("CVK", CVK),
    ] {
        assert!(!dump.contains(secret), "{what} in the database");
        assert!(!log.contains(secret), "{what} in the facade log");
    }
    for marker in ["CVV=", "\"cvv\"", "\"pin\"", "ICVV"] {
        assert!(!dump.contains(marker), "{marker} in the database");
    }
    // The PIN block the switch sent is ciphertext, but it is still never logged.
    assert!(!log.contains(&clear_block), "PIN block in the facade log");
    assert!(!dump.contains(&clear_block), "PIN block in the database");
}

#[test]
fn whole_flow_sqlite() {
    whole_flow(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn whole_flow_postgres() {
    whole_flow(Db::Postgres);
}
