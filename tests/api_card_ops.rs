//! Card security operations and controls through the REST facade, against a real daemon
//! and API process: security codes (decrypted here with the example transport key and
//! checked against `cofre calc`), PIN validation and lockout, PIN unblock, dynamic CVV2,
//! card block, card status and credit limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use std::process::Command;

use api::daemon::Raw;
use api::{Api, CLIENT_1, Db, System};
use cofre::crypto::cipher::BlockCipher;
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{self, Format, PinBlock};
use cofre::protocol::{Opcode, Status, Tag};
use serde_json::{Value, json};

/// keys-example/README.md: `transport.example`, `zpk.example`, `cvk.example`, `pvk.example`.
const TRANSPORT: &str = "11111111111111112222222222222222";
const ZPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const CVK: &str = "0123456789ABCDEFFEDCBA9876543210";
const PVK: &str = "0123456789ABCDEFFEDCBA9876543210";

fn customer_body(doc: &str) -> Value {
    json!({
        "customerData": {
            "customerKeyData": {"organizationNumber": 800, "customerNumber": "0000000000000000000", "accountNumber": "0000000000000000000"},
            "ownerCoOwnerData": {"ownerData": {
                "nameLine1": "JOAO PEREIRA", "identificationNumber": doc, "dateOfBirth": "1985-07-14",
                "houseAddress1": "Rua das Flores 10", "city": "Sao Paulo", "state": "SP", "postalCode": "01001000",
                "countryCode": "BRA", "mobilePhoneNumber": "11-99999-0000", "email": "joao@example.com",
                "address2Indicator": "", "address2Line1": "", "address2Line2": "", "address2Line3": "",
                "address3Indicator": "", "address3Line1": "", "address3Line2": "", "address3Line3": "",
                "city2": "", "city3": "", "countryCode2": "", "countryCode3": "", "cuit": "20374645497", "ffNumber": "",
                "income": 5000, "ivaPosition": "1", "occupationCode": "123456", "postalCode2": "", "postalCode3": "",
                "statement2Indicator": "", "userDate3": "2023-01-13"
            }}
        }
    })
}

/// Customer -> account -> embosser record -> activation: the active card's cardNumber.
fn issue_card(c: &Api, doc: &str) -> String {
    let r = c.call("POST", "/customer", &customer_body(doc));
    r.expect(200);
    let customer = r.json["customerNumber"].as_str().unwrap().to_owned();
    let account = json!({"accountData": {
        "customerNumber": customer, "organization": 800, "logo": 1, "creditLimit": 5000,
        "billingCycle": 10, "accountNumber": "0000000000000000000",
        "billingLevel": 0, "cashPlanInstallmentPayment": 0, "customerSelectedDueDay": "10",
        "ddaAccountNumber": "0000000000000000000", "dualBillingFlag": 0, "feeMonthOverride": 0,
        "installmentBillingCashCreditLimit": 0, "installmentBillingRetailCreditLimit": 0,
        "promotionalPlanNumber": 0, "qualification": "0", "retailPlanInstallmentPayments": 0,
        "savingsAccountNumber": "0000000000000000000"
    }});
    let r = c.call("POST", "/account", &account);
    r.expect(200);
    let account = r.json["accountNumber"].as_str().unwrap().to_owned();
    let emb = json!({"organizationNumber": 800, "postToAccount": account, "cardNumber": "",
        "customerNumber": customer, "cardAction": 1, "embossedName1": "JOAO PEREIRA"});
    let r = c.call("POST", "/cards/embosser", &emb);
    r.expect(200);
    let card = r.json["cardNumber"].as_str().unwrap().to_owned();
    let act = json!({"organizationNumber": 800, "cardNumber": card, "serviceType": "S"});
    c.call("PUT", "/cards/activation", &act).expect(200);
    card
}

fn tdes(hex: &str) -> BlockCipher {
    BlockCipher::tdes(&hex::decode(hex).unwrap()).unwrap()
}

/// One 16-hex-character block decrypted under the clear transport key.
fn clear_block(hex_block: &str) -> String {
    assert_eq!(hex_block.len(), 16, "{hex_block}");
    assert_eq!(hex_block, hex_block.to_ascii_uppercase());
    let mut b = hex::decode(hex_block).unwrap();
    tdes(TRANSPORT).decrypt_ecb(&mut b).unwrap();
    hex::encode_upper(b)
}

/// The clear PAN behind a cardNumber, from the daemon as the issuing host.
fn clear_pan(sys: &System, card: &str) -> String {
    let mut raw: Raw = sys.hsm.connect("issuing-host-1");
    let r = raw.call(Opcode::Detokenise, |w| {
        w.str(Tag::Token, card.trim_start_matches('0'));
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    r.str(Tag::Pan)
}

fn calc(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
        .arg("calc")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn iso0(pin: &str, pan: &str) -> String {
    let block = pinblock::encipher(
        Format::Iso0,
        &tdes(ZPK),
        &cofre::crypto::Pin::new(pin).unwrap(),
        Some(&Pan::new(pan).unwrap()),
        &mut rand::rng(),
    )
    .unwrap();
    hex::encode_upper(block.as_bytes())
}

fn validate(c: &Api, card: &str, block: &str) -> api::Resp {
    c.call(
        "POST",
        "/cards/pin/validation",
        &json!({"organizationNumber": 800, "cardNumber": card, "currentPinBlock": block,
            "channel": "A", "keyAssociation": "IYY"}),
    )
}

fn attempts(c: &Api, card: &str) -> Value {
    let r = c.call(
        "POST",
        "/cards/pin/invalid-attempts",
        &json!({"organizationNumber": 800, "cardNumber": card}),
    );
    r.expect(200).check("POST", "/cards/pin/invalid-attempts");
    r.json["outputArea"].clone()
}

fn pin_status(c: &Api, card: &str, code: &str) -> api::Resp {
    c.call(
        "PUT",
        "/cards/pin/status",
        &json!({"organizationNumber": 800, "cardNumber": card, "serviceFunctionCode": code,
            "channel": "W"}),
    )
}

/// Security codes at both paths: (CVV, CVV2, iCVV, PIN), decrypted and checked.
fn security_codes(sys: &System, c: &Api, card: &str, pan: &str) -> (String, String) {
    let body = json!({"organizationNumber": 800, "cardNumber": card, "channelIndicator": "W",
        "keyAssociation": "IYY"});
    let mut pins = Vec::new();
    let mut cvv2 = String::new();
    for path in ["/cards/v1/pin/codes", "/cards/pin/security-codes"] {
        let r = c.call("POST", path, &body);
        r.expect(200).check("POST", "/cards/v1/pin/codes");
        let users = r.json["usersDefined"].as_array().unwrap();
        assert_eq!(users.len(), 3);
        let expiry = card_expiry(sys, card);
        for (i, (u, sc)) in users.iter().zip(["201", "000", "999"]).enumerate() {
            assert_eq!(u["key"], (i + 1).to_string());
            let clear = clear_block(u["value"].as_str().unwrap());
            assert_eq!(&clear[..2], "13", "code block layout");
            let want = calc(&[
                "cvv",
                "--cvk",
                CVK,
                "--pan",
                pan,
                "--expiry",
                &expiry,
                "--service-code",
                sc,
            ]);
            assert_eq!(&clear[2..5], want, "code {}", i + 1);
            if sc == "000" {
                cvv2 = want;
            }
        }
        let pin_block =
            PinBlock::from_hex(&clear_block(r.json["pinEncrypt"].as_str().unwrap())).unwrap();
        let pin = pinblock::decode_clear(Format::Iso1, &pin_block, None).unwrap();
        pins.push(pin.expose_secret().to_owned());
    }
    assert_eq!(pins[0], pins[1]);
    (pins.remove(0), cvv2)
}

/// The card's expiry and PVV, read from the database dump (neither is secret).
fn card_expiry(sys: &System, card: &str) -> String {
    card_column(sys, card, "expiry")
}

fn card_column(sys: &System, card: &str, column: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = cofre::api::store::Store::open(&sys.database).await.unwrap();
        let c = store
            .card_by_token(card.trim_start_matches('0'))
            .await
            .unwrap()
            .unwrap();
        match column {
            "expiry" => c.expiry,
            "pvv" => c.pvv,
            "status" => c.status,
            "pin_status" => c.pin_status,
            "dcvv2" => c.dcvv2,
            "credit_limit" => c.credit_limit.to_string(),
            other => panic!("no column {other}"),
        }
    })
}

/// The record tables as text. (`System::dump_database` cannot list PostgreSQL tables
/// through `sqlx::Any`: `pg_tables.tablename` is of type `name`.)
fn dump(sys: &System) -> String {
    if sys.db == Db::Sqlite {
        return sys.dump_database();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&sys.database).await.unwrap();
        let mut out = String::new();
        for t in ["customers", "accounts", "cards", "history"] {
            let sql = format!("SELECT CAST(row_to_json(x) AS TEXT) FROM {t} x");
            let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&pool).await.unwrap();
            out.push_str(&format!("== {t}\n{}\n", rows.join("\n")));
        }
        out
    })
}

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
    let dump = dump(&sys);
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
fn card_ops_postgres() {
    card_ops(Db::Postgres);
}
