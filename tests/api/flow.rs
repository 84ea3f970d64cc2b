//! Shared steps of the facade's flow tests: issuing a card over HTTP, the clear values
//! the test (never the facade) may learn from the daemon or by decrypting under the
//! example transport key, and calls used by several tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use super::daemon::Raw;
use super::{Api, System};
use cofre::crypto::cipher::BlockCipher;
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{self, Format, PinBlock};
use cofre::protocol::{Opcode, Status, Tag};
use serde_json::{Value, json};

/// keys-example/README.md: `transport.example`, `zpk.example`, `cvk.example`, `pvk.example`.
pub const TRANSPORT: &str = "11111111111111112222222222222222";
pub const ZPK: &str = "0123456789ABCDEFFEDCBA9876543210";
pub const CVK: &str = "0123456789ABCDEFFEDCBA9876543210";
pub const PVK: &str = "0123456789ABCDEFFEDCBA9876543210";

pub fn customer_body(doc: &str) -> Value {
    customer_named("JOAO PEREIRA", doc)
}

/// A customer-add body that passes the processor's schema, for `name` and document `doc`.
pub fn customer_named(name: &str, doc: &str) -> Value {
    json!({
        "customerData": {
            "customerKeyData": {"organizationNumber": 800, "customerNumber": "0000000000000000000", "accountNumber": "0000000000000000000"},
            "ownerCoOwnerData": {"ownerData": {
                "nameLine1": name, "identificationNumber": doc, "dateOfBirth": "1985-07-14",
                "houseAddress1": "Rua das Flores 10", "city": "Sao Paulo", "state": "SP", "postalCode": "01001000",
                "countryCode": "BRA", "mobilePhoneNumber": "11-99999-0000", "email": "cliente@example.com",
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
pub fn issue_card(c: &Api, doc: &str) -> String {
    let (customer, account) = customer_and_account(c, doc);
    let r = c.call(
        "POST",
        "/cards/embosser",
        &embosser_body(&customer, &account),
    );
    r.expect(200);
    let card = r.json["cardNumber"].as_str().unwrap().to_owned();
    let act = json!({"organizationNumber": 800, "cardNumber": card, "serviceType": "S"});
    c.call("PUT", "/cards/activation", &act).expect(200);
    card
}

/// An embosser-add body for a customer's account.
pub fn embosser_body(customer: &str, account: &str) -> Value {
    json!({"organizationNumber": 800, "postToAccount": account, "cardNumber": "",
        "customerNumber": customer, "cardAction": 1, "embossedName1": "JOAO PEREIRA"})
}

/// An account-add body for a customer (product 800/1).
pub fn account_body(customer: &str) -> Value {
    json!({"accountData": {
        "customerNumber": customer, "organization": 800, "logo": 1, "creditLimit": 5000,
        "billingCycle": 10, "accountNumber": "0000000000000000000",
        "billingLevel": 0, "cashPlanInstallmentPayment": 0, "customerSelectedDueDay": "10",
        "ddaAccountNumber": "0000000000000000000", "dualBillingFlag": 0, "feeMonthOverride": 0,
        "installmentBillingCashCreditLimit": 0, "installmentBillingRetailCreditLimit": 0,
        "promotionalPlanNumber": 0, "qualification": "0", "retailPlanInstallmentPayments": 0,
        "savingsAccountNumber": "0000000000000000000"
    }})
}

/// How many cards each account has (by its 19-digit number), read from the database.
pub fn cards_per_account(sys: &System) -> std::collections::BTreeMap<String, i64> {
    sys.with_db(async |pool| {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT account_id, COUNT(*) FROM cards GROUP BY account_id")
                .fetch_all(pool)
                .await
                .unwrap();
        rows.into_iter()
            .map(|(a, n)| (format!("{a:019}"), n))
            .collect()
    })
}

/// Customer -> account: (customerNumber, accountNumber).
pub fn customer_and_account(c: &Api, doc: &str) -> (String, String) {
    let r = c.call("POST", "/customer", &customer_body(doc));
    r.expect(200);
    let customer = r.json["customerNumber"].as_str().unwrap().to_owned();
    let r = c.call("POST", "/account", &account_body(&customer));
    r.expect(200);
    let account = r.json["accountNumber"].as_str().unwrap().to_owned();
    (customer, account)
}

pub fn tdes(hex: &str) -> BlockCipher {
    BlockCipher::tdes(&hex::decode(hex).unwrap()).unwrap()
}

/// One 16-hex-character block decrypted under the clear transport key.
pub fn clear_block(hex_block: &str) -> String {
    assert_eq!(hex_block.len(), 16, "{hex_block}");
    assert_eq!(hex_block, hex_block.to_ascii_uppercase());
    let mut b = hex::decode(hex_block).unwrap();
    tdes(TRANSPORT).decrypt_ecb(&mut b).unwrap();
    hex::encode_upper(b)
}

/// The clear PAN behind a cardNumber, from the daemon as the issuing host.
pub fn clear_pan(sys: &System, card: &str) -> String {
    let mut raw: Raw = sys.hsm.connect("issuing-host-1");
    let r = raw.call(Opcode::Detokenise, |w| {
        w.str(Tag::Token, card.trim_start_matches('0'));
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    r.str(Tag::Pan)
}

pub fn calc(args: &[&str]) -> String {
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

pub fn iso0(pin: &str, pan: &str) -> String {
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

pub fn validate(c: &Api, card: &str, block: &str) -> super::Resp {
    c.call(
        "POST",
        "/cards/pin/validation",
        &json!({"organizationNumber": 800, "cardNumber": card, "currentPinBlock": block,
            "channel": "A", "keyAssociation": "IYY"}),
    )
}

pub fn attempts(c: &Api, card: &str) -> Value {
    let r = c.call(
        "POST",
        "/cards/pin/invalid-attempts",
        &json!({"organizationNumber": 800, "cardNumber": card}),
    );
    r.expect(200).check("POST", "/cards/pin/invalid-attempts");
    r.json["outputArea"].clone()
}

pub fn pin_status(c: &Api, card: &str, code: &str) -> super::Resp {
    c.call(
        "PUT",
        "/cards/pin/status",
        &json!({"organizationNumber": 800, "cardNumber": card, "serviceFunctionCode": code,
            "channel": "W"}),
    )
}

/// Security codes at both paths: (CVV, CVV2, iCVV, PIN), decrypted and checked.
pub fn security_codes(sys: &System, c: &Api, card: &str, pan: &str) -> (String, String) {
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
pub fn card_expiry(sys: &System, card: &str) -> String {
    card_column(sys, card, "expiry")
}

pub fn card_column(sys: &System, card: &str, column: &str) -> String {
    assert!(
        [
            "expiry",
            "pvv",
            "status",
            "pin_status",
            "dcvv2",
            "credit_limit"
        ]
        .contains(&column),
        "no column {column}"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&sys.database).await.unwrap();
        let sql = format!("SELECT CAST({column} AS TEXT) FROM cards WHERE token = $1");
        let v: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(card.trim_start_matches('0'))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        v
    })
}
