//! The issuing flow over HTTP against real `cofre hsm` and `cofre api` processes, on
//! SQLite and PostgreSQL: customer -> account (both paths) -> embosser cards (both
//! paths, a physical and a digital card on one account) -> activation (S, A, T) ->
//! card-pan (P with the clear PAN, which the test gets from the daemon as the issuing
//! host; C with the token) -> reissue for loss -> instant card; and the refusals, each
//! checked to have changed nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use std::collections::BTreeMap;

use api::{Api, CLIENT_1, CLIENT_2, Db, System};
use cofre::protocol::{Opcode, Tag};
use serde_json::{Value, json};

const ACCOUNT: &str = "/account/add-L8V3";
const EMBOSSER: &str = "/cards/embosser/l8vf";
const ACTIVATION: &str = "/cards/activation";
const PAN: &str = "/cards/embosser/card-pan-l8v2";
const ACTION: &str = "/cards/embosser/cardAction-L8V2";
const INSTANT: &str = "/account/v2/instantCard";

fn customer_body(doc: &str) -> Value {
    api::flow::customer_named("MARIA DA SILVA", doc)
}

fn account_body(customer: &str, limit: Value) -> Value {
    json!({"accountData": {
        "organization": 800, "logo": 1, "customerNumber": customer, "shortName": "MARIA SILVA",
        "creditLimit": limit, "billingCycle": 10, "billingCurrency": "986",
        "billingLevel": 0, "cashPlanInstallmentPayment": 10001, "customerSelectedDueDay": "15",
        "ddaAccountNumber": "0000000000000000000", "dualBillingFlag": 0, "feeMonthOverride": 1,
        "installmentBillingCashCreditLimit": 0, "installmentBillingRetailCreditLimit": 0,
        "promotionalPlanNumber": 10001, "qualification": "A", "retailPlanInstallmentPayments": 10001,
        "savingsAccountNumber": "0000000000000000000"
    }})
}

fn embosser_body(customer: &str, account: &str) -> Value {
    json!({
        "organizationNumber": 800, "postToAccount": account, "customerNumber": customer,
        "cardNumber": "", "embossedName1": "MARIA DA SILVA", "typeOfCard": 1,
        "addressLine1": "Rua das Flores 10", "city": "Sao Paulo", "stateOrProvince": "SP",
        "postalCode": "01001000", "retailPurchaseAmt": 1000.0, "internetPurchaseAmount": 500
    })
}

fn add_customer(c: &Api, doc: &str) -> String {
    let r = c.call("POST", "/customer", &customer_body(doc));
    r.expect(200).check("POST", "/customer/l8v2");
    r.json["customerNumber"].as_str().unwrap().to_owned()
}

fn add_account(c: &Api, path: &str, customer: &str) -> String {
    let r = c.call("POST", path, &account_body(customer, json!(5000.00)));
    r.expect(200).check("POST", ACCOUNT);
    let n = r.json["accountNumber"].as_str().unwrap().to_owned();
    assert_eq!(n.len(), 19);
    assert_eq!(r.json["organization"], 800);
    n
}

fn add_card(c: &Api, path: &str, body: &Value) -> String {
    let r = c.call("POST", path, body);
    r.expect(200).check("POST", EMBOSSER);
    let n = r.json["cardNumber"].as_str().unwrap().to_owned();
    assert_eq!(n.len(), 19);
    assert_eq!(r.json["accountNumber"], body["postToAccount"]);
    n
}

fn activate(c: &Api, card: &str, service: &str) -> api::Resp {
    c.call(
        "PUT",
        ACTIVATION,
        &json!({"organizationNumber": 800, "cardNumber": card, "serviceType": service}),
    )
}

fn activated(c: &Api, card: &str, service: &str) -> i64 {
    let r = activate(c, card, service);
    r.expect(200).check("PUT", ACTIVATION);
    r.json["numberCardsActivated"].as_i64().unwrap()
}

/// The first column of every row of `sql`, as text. (The harness's `dump_database`
/// cannot list PostgreSQL tables through `sqlx::Any`, so the test asks directly.)
fn column(sys: &System, sql: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&sys.database).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    })
}

/// Rows per table (the tables a refused call must not touch).
fn counts(sys: &System) -> BTreeMap<&'static str, String> {
    ["customers", "accounts", "cards", "history", "issued_pans"]
        .into_iter()
        .map(|t| {
            let n = column(sys, &format!("SELECT CAST(COUNT(*) AS TEXT) FROM {t}"));
            (t, n.concat())
        })
        .collect()
}

/// Whether a card column holds `value` on some card.
fn has_cell(sys: &System, col: &str, value: &str) -> bool {
    column(sys, &format!("SELECT {col} FROM cards"))
        .iter()
        .any(|v| v == value)
}

/// The clear PAN of a card, asked of the daemon as the issuing host (the facade never
/// answers it).
fn clear_pan(sys: &System, card_number: &str) -> String {
    let token = card_number.trim_start_matches('0');
    let r = sys
        .hsm
        .connect("issuing-host-1")
        .call(Opcode::Detokenise, |w| {
            w.str(Tag::Token, token);
        });
    r.str(Tag::Pan)
}

/// A Luhn-valid number from `prefix` (15 digits -> 16).
fn luhn(prefix: &str) -> String {
    for d in 0..10 {
        let candidate = format!("{prefix}{d}");
        let sum: u32 = candidate
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let v = u32::from(b - b'0');
                if i % 2 == 1 {
                    let x = v * 2;
                    if x > 9 { x - 9 } else { x }
                } else {
                    v
                }
            })
            .sum();
        if sum.is_multiple_of(10) {
            return candidate;
        }
    }
    unreachable!()
}

fn issuing(db: Db) {
    let Some(sys) = System::start("api-issuing", db) else {
        return;
    };
    let c = sys.client(CLIENT_1);
    let customer = add_customer(&c, "12345678909");
    // Accounts on both paths.
    let account = add_account(&c, "/account", &customer);
    let account2 = add_account(&c, ACCOUNT, &customer);
    assert_ne!(account, account2);

    // A physical and a digital card on one account, on both paths.
    let physical = add_card(&c, "/cards/embosser", &embosser_body(&customer, &account));
    let mut digital_body = embosser_body(&customer, &account);
    digital_body["deviceIndicator"] = json!("D");
    digital_body["expirationDate"] = json!("2031-06-30");
    let digital = add_card(&c, EMBOSSER, &digital_body);
    assert_ne!(physical, digital);
    assert!(physical.starts_with("000455555") && digital.starts_with("000455555"));
    assert!(has_cell(&sys, "kind", "digital-wallet"));
    assert!(has_cell(&sys, "kind", "physical-credit"));
    assert!(
        has_cell(&sys, "expiry", "3106"),
        "the requested expiry is kept"
    );

    // Activation: S activates the one card, A the rest of the account, again: none.
    assert_eq!(activated(&c, &physical, "S"), 1);
    assert_eq!(activated(&c, &physical, "S"), 0);
    assert_eq!(activated(&c, &physical, "A"), 1);
    assert_eq!(activated(&c, &digital, "A"), 0);
    let r = activate(&c, &physical, "X");
    r.expect(422);
    assert_eq!(r.code(), "invalid_service_type");

    // card-pan: P with the clear PAN answers the card's token; C with the token answers
    // the masked PAN, never the clear one.
    let pan = clear_pan(&sys, &physical);
    assert_eq!(pan.len(), 16);
    let r = c.call(
        "POST",
        PAN,
        &json!({"organizationNumber": 800, "cardNumber": pan, "cardSequence": 1, "functionType": "P"}),
    );
    r.expect(200).check("POST", PAN);
    assert_eq!(r.json["panToken"], physical.as_str());
    assert_eq!(r.json["accountNumber"], account.as_str());
    assert!(!r.text.contains(&pan));
    let r = c.call(
        "POST",
        PAN,
        &json!({"organizationNumber": 800, "cardNumber": physical, "cardSequence": 1, "functionType": "C"}),
    );
    r.expect(200).check("POST", PAN);
    assert_eq!(
        r.json["cardNumber"],
        format!("{}******{}", &pan[..6], &pan[12..])
    );
    assert!(!r.text.contains(&pan));
    // An unknown (Luhn-valid) PAN.
    let unknown = luhn("455555000000000");
    let r = c.call(
        "POST",
        PAN,
        &json!({"organizationNumber": 800, "cardNumber": unknown, "cardSequence": 1, "functionType": "P"}),
    );
    r.expect(422);
    assert_eq!(r.code(), "card_not_found");

    // Reissue for loss: the old card is blocked at once, the new one has a new number
    // and needs activation; the old one cannot be activated or reissued again.
    let r = c.call(
        "PUT",
        ACTION,
        &json!({"organizationNumber": 800, "cardNumber": physical, "cardAction": 3,
            "randomPin": 1, "cardActionReason": "L"}),
    );
    r.expect(200).check("PUT", ACTION);
    let replacement = r.json["cardNumber"].as_str().unwrap().to_owned();
    assert_eq!(replacement.len(), 19);
    assert_ne!(replacement, physical);
    assert_eq!(r.json["customerNumber"], customer.as_str());
    assert!(r.json["expiryDate"].is_string());
    let r = activate(&c, &physical, "S");
    r.expect(422);
    assert_eq!(r.code(), "card_not_activatable");
    let r = c.call(
        "PUT",
        ACTION,
        &json!({"organizationNumber": 800, "cardNumber": physical, "cardAction": 3, "randomPin": 0}),
    );
    r.expect(422);
    assert_eq!(r.code(), "card_not_reissuable");
    assert!(has_cell(&sys, "status", "lost"));
    assert_eq!(activated(&c, &replacement, "T"), 1);
    assert_ne!(clear_pan(&sys, &replacement), pan);

    // Reissue for damage: the old card stays usable until the new one is activated with
    // T, which retires it.
    let r = c.call(
        "PUT",
        ACTION,
        &json!({"organizationNumber": 800, "cardNumber": digital, "cardAction": 2,
            "randomPin": 0, "cardActionReason": "D", "numberCardsRequested": 1}),
    );
    r.expect(200).check("PUT", ACTION);
    let renewed = r.json["cardNumber"].as_str().unwrap().to_owned();
    assert_eq!(r.json["numberCardsRequested"], 1);
    assert_eq!(activated(&c, &digital, "S"), 0, "still active");
    assert_eq!(activated(&c, &renewed, "T"), 1);
    let r = activate(&c, &digital, "S");
    r.expect(422);
    assert_eq!(r.code(), "card_not_activatable");
    assert!(has_cell(&sys, "status", "replaced"));
    assert!(has_cell(&sys, "kind", "digital-wallet"));

    // Instant card: account and card in one step, active at once.
    let body = json!({
        "organizationNumber": 800, "logo": 2, "customerNumber": customer,
        "firstPurchaseFlag": "Y", "accountCreateFlag": "Y", "sameDayProcessingType": 0,
        "cardActionFlag": 0,
        "accountData": {"billingCycle": 5, "creditLimit": 2500.5, "shortName": "MARIA"},
        "embosserData": {"digitalCardFlag": 1, "embossedName1": "MARIA DA SILVA"}
    });
    let r = c.call("POST", INSTANT, &body);
    r.expect(200).check("POST", INSTANT);
    let instant = r.json["cardNumber"].as_str().unwrap().to_owned();
    assert!(instant.starts_with("000455556"), "logo 2's BIN");
    assert_eq!(r.json["creditLimit"], 2500.5);
    assert_eq!(r.json["customerNumber"], customer.as_str());
    assert!(r.json["cardExpiryDate"].is_string());
    assert_eq!(activated(&c, &instant, "S"), 0, "already active");
    // On an existing account.
    let mut on_existing = body.clone();
    on_existing["accountCreateFlag"] = json!("N");
    on_existing["accountData"]["accountNumber"] = json!(account2);
    let r = c.call("POST", INSTANT, &on_existing);
    r.expect(200).check("POST", INSTANT);
    assert_eq!(r.json["accountNumber"], account2.as_str());

    refusals(&sys, &c, &customer, &account);
}

fn refusals(sys: &System, c: &Api, customer: &str, account: &str) {
    let other = add_customer(c, "98765432100");
    let before = counts(sys);
    let expect = |r: &api::Resp, status: u16, code: &str, field: Option<&str>| {
        r.expect(status);
        assert_eq!(r.code(), code, "{}", r.text);
        if let Some(f) = field {
            assert_eq!(r.json["error"]["field"], f, "{}", r.text);
        }
    };
    // Accounts.
    let r = c.call(
        "POST",
        "/account",
        &account_body("0000000000000000001", json!(1)),
    );
    expect(
        &r,
        422,
        "customer_not_found",
        Some("/accountData/customerNumber"),
    );
    for limit in [json!(-1), json!(1.0e12), json!(1.0e300)] {
        let r = c.call("POST", "/account", &account_body(customer, limit));
        expect(
            &r,
            422,
            "limit_out_of_range",
            Some("/accountData/creditLimit"),
        );
    }
    let mut b = account_body(customer, json!(10));
    b["accountData"]["billingCycle"] = json!(32);
    let r = c.call("POST", "/account", &b);
    expect(
        &r,
        422,
        "invalid_cycle_day",
        Some("/accountData/billingCycle"),
    );
    let mut b = account_body(customer, json!(10));
    b["accountData"]["logo"] = json!(9);
    let r = c.call("POST", "/account", &b);
    expect(&r, 422, "unknown_product", None);
    let mut b = account_body(customer, json!(10));
    b["accountData"]["customerNumber"] = json!("123");
    let r = c.call("POST", "/account", &b);
    expect(&r, 400, "schema_violation", None);
    // Another tenant's customer is unknown.
    let c2 = sys.client(CLIENT_2);
    let r = c2.call("POST", "/account", &account_body(customer, json!(10)));
    expect(&r, 422, "customer_not_found", None);
    // Cards.
    let r = c.call(
        "POST",
        EMBOSSER,
        &embosser_body(customer, "0000000000000000002"),
    );
    expect(&r, 422, "account_not_found", Some("/postToAccount"));
    let r = c.call("POST", EMBOSSER, &embosser_body(&other, account));
    expect(&r, 422, "account_not_of_customer", Some("/postToAccount"));
    let r = c2.call("POST", EMBOSSER, &embosser_body(customer, account));
    expect(&r, 422, "account_not_found", None);
    let mut b = embosser_body(customer, account);
    b["expirationDate"] = json!("2001-01-31");
    let r = c.call("POST", EMBOSSER, &b);
    expect(&r, 422, "invalid_expiry", Some("/expirationDate"));
    let mut b = embosser_body(customer, account);
    b["retailPurchaseAmt"] = json!(-5);
    let r = c.call("POST", EMBOSSER, &b);
    expect(&r, 422, "limit_out_of_range", Some("/retailPurchaseAmt"));
    let mut b = embosser_body(customer, account);
    b.as_object_mut().unwrap().remove("organizationNumber");
    let r = c.call("POST", EMBOSSER, &b);
    expect(&r, 400, "schema_violation", None);
    // Instant card for an unknown customer, and with a bad cycle day.
    let bad = json!({
        "organizationNumber": 800, "logo": 1, "customerNumber": "0000000000000000001",
        "firstPurchaseFlag": "Y", "accountCreateFlag": "Y", "sameDayProcessingType": 0,
        "cardActionFlag": 0, "accountData": {"billingCycle": 5},
        "embosserData": {"digitalCardFlag": 0}
    });
    let r = c.call("POST", INSTANT, &bad);
    expect(&r, 422, "customer_not_found", Some("/customerNumber"));
    let mut b = bad.clone();
    b["customerNumber"] = json!(customer);
    b["accountData"]["billingCycle"] = json!(0);
    let r = c.call("POST", INSTANT, &b);
    expect(&r, 422, "invalid_cycle_day", None);
    // Card action with an unknown action code.
    let r = c.call(
        "PUT",
        ACTION,
        &json!({"organizationNumber": 800, "cardNumber": "0004555551234567890", "cardAction": 3, "randomPin": 0}),
    );
    expect(&r, 422, "card_not_found", Some("/cardNumber"));
    assert_eq!(counts(sys), before, "a refused call changed the records");
}

#[test]
fn issuing_sqlite() {
    issuing(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn issuing_postgres() {
    issuing(Db::Postgres);
}
