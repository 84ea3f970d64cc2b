//! Card security operations and controls through the REST facade, against a real daemon
//! and API process: security codes (decrypted here with the example transport key and
//! checked against `cofre calc`), PIN validation and lockout, PIN unblock, dynamic CVV2,
//! card block, card status and credit limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use api::daemon::Raw;
use api::flow::*;
use api::{CLIENT_1, Db, System};
use cofre::protocol::{Opcode, Status, Tag};
use serde_json::{Value, json};

fn card_ops(db: Db) {
    let Some(sys) = System::start("api-card-ops", db) else {
        return;
    };
    let c = sys.client(CLIENT_1);
    let card = issue_card(&c, "52998224725");
    let pan = clear_pan(&sys, &card);

    // Security codes: decrypted with the clear transport key, equal to cofre calc.
    let (pin, cvv2) = security_codes(&sys, &c, &card, &pan);
    let pvv = calc(&[
        "pvv", "--pvk", PVK, "--pvki", "1", "--pin", &pin, "--pan", &pan,
    ]);
    assert_eq!(pvv, card_column(&sys, &card, "pvv"));
    let r = c.call(
        "POST",
        "/cards/v1/pin/codes",
        &json!({"organizationNumber": 800, "cardNumber": card, "channelIndicator": "W",
            "keyAssociation": "ZZZ"}),
    );
    r.expect(422);
    assert_eq!(r.code(), "unknown_key_association");

    // PIN validation: right, wrong, malformed.
    let right = iso0(&pin, &pan);
    validate(&c, &card, &right)
        .expect(200)
        .check("POST", "/cards/pin/validation");
    let wrong_pin = if pin == "1234" { "4321" } else { "1234" };
    let wrong = iso0(wrong_pin, &pan);
    let r = validate(&c, &card, &wrong);
    r.expect(422).check("POST", "/cards/pin/validation");
    assert_eq!(r.code(), "invalid_pin");
    assert_eq!(attempts(&c, &card)["cardInvalidPinTries"], 1);
    let r = validate(&c, &card, "ZZZZZZZZZZZZZZZZ");
    r.expect(422);
    assert_eq!(r.code(), "invalid_pin_block");
    // A format 0 block under the right key but for another PAN: invalid_pin_block or a
    // wrong PIN, never a success.
    let r = validate(&c, &card, &iso0(&pin, "4111111111111111"));
    r.expect(422);
    // A right PIN resets the count; then three wrong ones lock the card.
    validate(&c, &card, &right).expect(200);
    let a = attempts(&c, &card);
    assert_eq!(a["blockedIndicator"], "N");
    assert_eq!(a["maxNumberInvalidPinTries"], 3);
    for _ in 0..3 {
        assert_eq!(validate(&c, &card, &wrong).code(), "invalid_pin");
    }
    let a = attempts(&c, &card);
    assert_eq!(a["blockedIndicator"], "B", "{a}");
    assert_eq!(a["cardInvalidPinTries"], 3);
    let r = validate(&c, &card, &right);
    r.expect(422);
    assert_eq!(r.code(), "pin_locked");
    // Unblocking the PIN resets the daemon's counter.
    pin_status(&c, &card, "U")
        .expect(200)
        .check("PUT", "/cards/pin/status");
    assert_eq!(attempts(&c, &card)["blockedIndicator"], "N");
    validate(&c, &card, &right).expect(200);
    // The issuer blocks the PIN: refused without asking the daemon.
    pin_status(&c, &card, "B").expect(200);
    assert_eq!(attempts(&c, &card)["blockedIndicator"], "B");
    let r = validate(&c, &card, &right);
    r.expect(422);
    assert_eq!(r.code(), "card_blocked");
    pin_status(&c, &card, "U").expect(200);
    let r = pin_status(&c, &card, "X");
    r.expect(422);
    assert_eq!(r.code(), "invalid_service_function");

    // Static CVV2 verifies at the daemon before dCVV2, not after.
    let expiry = card_expiry(&sys, &card);
    let mut raw = sys.hsm.connect("issuing-host-1");
    let cvv_verify = |raw: &mut Raw| {
        raw.call(Opcode::CvvVerify, |w| {
            w.str(Tag::Pan, &pan)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, &expiry)
                .str(Tag::ServiceCode, "000")
                .str(Tag::Cvv, &cvv2);
        })
    };
    assert_eq!(cvv_verify(&mut raw).status(), Status::Ok);
    let dyn_body = |disable: &str| {
        json!({"organizationNumber": 800, "cardNumber": card, "channel": "W",
            "keyAssociation": "IYY", "disableDCVV2": disable})
    };
    let r = c.call("POST", "/cards/pin/dynamic-values", &dyn_body("N"));
    r.expect(200).check("POST", "/cards/pin/dynamic-values");
    let code = r.json["dcvv2"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 3);
    assert_eq!(r.json["dcvv2ExpiryMinutes"], "5");
    assert!(
        r.json["dcvv2GenerationTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(card_column(&sys, &card, "dcvv2"), "on");
    let r = cvv_verify(&mut raw);
    assert_eq!(r.status(), Status::VerificationFailed);
    assert_eq!(r.fields().str(Tag::Reason).unwrap(), Some("dcvv2_active"));
    // The dynamic code verifies at the daemon.
    let r = raw.call(Opcode::Dcvv2Verify, |w| {
        w.str(Tag::Pan, &pan)
            .str(Tag::Key, "dcvv2.example")
            .str(Tag::Expiry, &expiry)
            .str(Tag::Dcvv2, &code);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    // Turning dCVV2 off brings the static CVV2 back.
    let r = c.call("POST", "/cards/pin/dynamic-values", &dyn_body("Y"));
    r.expect(200).check("POST", "/cards/pin/dynamic-values");
    assert!(r.json.get("dcvv2").is_none());
    assert_eq!(card_column(&sys, &card, "dcvv2"), "off");
    assert_eq!(cvv_verify(&mut raw).status(), Status::Ok);

    // Card block: PIN validation refused without the daemon, unblock restores.
    let block = |f: &str, code: &str| {
        c.call(
            "PUT",
            "/cards/embosser/block",
            &json!({"organizationNumber": 800, "cardNumber": card, "cardSequence": 1,
                "functionCode": f, "blockCode": code}),
        )
    };
    block("B", "L")
        .expect(200)
        .check("PUT", "/cards/embosser/block");
    assert_eq!(card_column(&sys, &card, "status"), "blocked");
    let r = validate(&c, &card, &right);
    r.expect(422);
    assert_eq!(r.code(), "card_blocked");
    let r = c.call("POST", "/cards/pin/dynamic-values", &dyn_body("N"));
    r.expect(422);
    assert_eq!(r.code(), "card_blocked");
    block("U", "L")
        .expect(200)
        .check("PUT", "/cards/embosser/block");
    assert_eq!(card_column(&sys, &card, "status"), "active");
    validate(&c, &card, &right).expect(200);
    let r = block("U", "L");
    r.expect(422);
    assert_eq!(r.code(), "card_not_blocked");
    let r = block("B", "#");
    r.expect(422);
    assert_eq!(r.code(), "invalid_block_code");

    // Card status.
    let status = |s: i64| {
        c.call(
            "PUT",
            "/cards/status-L8V1",
            &json!({"organizationNumber": 800, "cardNumber": card, "cardStatus": s}),
        )
    };
    status(2).expect(200).check("PUT", "/cards/status-L8V1");
    assert_eq!(validate(&c, &card, &right).code(), "card_blocked");
    status(1).expect(200);
    assert_eq!(status(1).code(), "status_unchanged");
    validate(&c, &card, &right).expect(200);

    // Credit limit.
    let limit = |v: Value| {
        c.call(
            "PUT",
            "/cards/credit-limit",
            &json!({"organizationNumber": 800, "accountNumber": card, "creditLimit": v,
                "foreignUseIndicator": "0"}),
        )
    };
    let r = limit(json!(1234.5));
    r.expect(200).check("PUT", "/cards/credit-limit");
    assert_eq!(r.json["creditLimit"], 1234.5);
    assert_eq!(card_column(&sys, &card, "credit_limit"), "123450");
    for bad in [json!(-1), json!(1e14)] {
        let r = limit(bad);
        r.expect(422);
        assert_eq!(r.code(), "limit_out_of_range");
        assert_eq!(r.json["error"]["field"], "/creditLimit");
    }
    assert_eq!(card_column(&sys, &card, "credit_limit"), "123450");

    // Every refusal is in the card's history; no clear PIN or PAN in the database.
    let dump = sys.dump_database();
    assert!(dump.contains("pin_refused"));
    assert!(!dump.contains(&pan), "clear PAN in the database");
    status(3).expect(200);
    assert_eq!(status(1).code(), "card_status_final");
    let r = validate(&c, &card, &right);
    assert_eq!(r.code(), "card_not_active");
}

#[test]
fn card_ops_sqlite() {
    card_ops(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn card_ops_postgres() {
    card_ops(Db::Postgres);
}
