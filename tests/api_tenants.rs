//! Tenants and idempotency over HTTP, on SQLite and PostgreSQL:
//! * two tenants register the same document and the same customer number: both succeed,
//!   and neither sees the other's;
//! * every processor card operation, customer update and activation, mass issue, its
//!   progress and embosser file, tried by a second tenant on the first's records: refused
//!   as unknown, and nothing changes;
//! * idempotency with two clients (the same request id is theirs each), with
//!   `Idempotency-Key`, and `request_in_progress` while the first call waits on a
//!   stopped daemon;
//! * two clients of one tenant change different fields of one card 100 times each,
//!   concurrently: no change lost;
//! * the dCVV2 answer is not in the database (stored answers are sealed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use std::sync::mpsc;

use api::flow::{account_body, customer_and_account, customer_body, embosser_body};
use api::{Api, CLIENT_1, CLIENT_2, Db, System, request_id};
use serde_json::{Value, json};

fn tag() -> String {
    request_id()
        .chars()
        .rev()
        .filter(char::is_ascii_digit)
        .take(9)
        .collect()
}

fn customer_with_number(number: &str, doc: &str) -> Value {
    let mut b = customer_body(doc);
    b["customerData"]["customerKeyData"]["customerNumber"] = json!(number);
    b
}

/// The same document and customer number in two tenants.
fn same_keys_in_two_tenants(a: &Api, b: &Api) {
    let doc = format!("DOC{}", tag());
    let number = format!("{:019}", tag().parse::<i64>().unwrap() + 7);
    let ra = a.call("POST", "/customer", &customer_with_number(&number, &doc));
    ra.expect(200);
    let rb = b.call("POST", "/customer", &customer_with_number(&number, &doc));
    rb.expect(200);
    assert_eq!(ra.json["customerNumber"], number.as_str());
    assert_eq!(rb.json["customerNumber"], number.as_str());
    // Within one tenant the number and the document stay unique.
    let again = a.call(
        "POST",
        "/customer",
        &customer_with_number(&number, &format!("X{doc}")),
    );
    assert_eq!((again.status, again.code().as_str()), (422, "duplicate"));
    let again = b.call("POST", "/customer", &customer_body(&doc));
    assert_eq!(
        (again.status, again.code().as_str()),
        (422, "duplicate_document")
    );
    // Each tenant's customer number is its own: an account on it lands in the caller's.
    let acct_a = a.call("POST", "/account", &account_body(&number));
    acct_a.expect(200);
    let acct_b = b.call("POST", "/account", &account_body(&number));
    acct_b.expect(200);
    // Tenant B cannot put a card on tenant A's account.
    let acct = acct_a.json["accountNumber"].as_str().unwrap();
    let r = b.call("POST", "/cards/embosser", &embosser_body(&number, acct));
    assert_eq!((r.status, r.code().as_str()), (422, "account_not_found"));
}

/// Every card operation, by the other tenant, on `card`: unknown, nothing changed.
fn card_operations_of_another_tenant(
    sys: &System,
    owner: &Api,
    other: &Api,
    (customer, account, card): (&str, &str, &str),
) {
    let before = sys.dump_database();
    let card_ops: Vec<(&str, &str, Value)> = vec![
        (
            "POST",
            "/cards/pin/security-codes",
            json!({"organizationNumber": 800, "cardNumber": card, "channelIndicator": "W", "keyAssociation": "IYY"}),
        ),
        (
            "POST",
            "/cards/v1/pin/codes",
            json!({"organizationNumber": 800, "cardNumber": card, "channelIndicator": "W", "keyAssociation": "IYY"}),
        ),
        (
            "POST",
            "/cards/pin/dynamic-values",
            json!({"organizationNumber": 800, "cardNumber": card, "channel": "W", "keyAssociation": "IYY", "disableDCVV2": "N"}),
        ),
        (
            "POST",
            "/cards/pin/invalid-attempts",
            json!({"organizationNumber": 800, "cardNumber": card}),
        ),
        (
            "POST",
            "/cards/pin/validation",
            json!({"organizationNumber": 800, "cardNumber": card, "currentPinBlock": "0123456789ABCDEF", "channel": "A", "keyAssociation": "IYY"}),
        ),
        (
            "PUT",
            "/cards/embosser/block",
            json!({"organizationNumber": 800, "cardNumber": card, "cardSequence": 1, "functionCode": "B", "blockCode": "L"}),
        ),
        (
            "PUT",
            "/cards/pin/status",
            json!({"organizationNumber": 800, "cardNumber": card, "serviceFunctionCode": "B", "channel": "W"}),
        ),
        (
            "PUT",
            "/cards/status-L8V1",
            json!({"organizationNumber": 800, "cardNumber": card, "cardStatus": 2}),
        ),
        (
            "PUT",
            "/cards/activation",
            json!({"organizationNumber": 800, "cardNumber": card, "serviceType": "I"}),
        ),
        (
            "POST",
            "/cards/embosser/card-pan-l8v2",
            json!({"organizationNumber": 800, "cardNumber": card, "cardSequence": 1, "functionType": "C"}),
        ),
        (
            "PUT",
            "/cards/embosser/cardAction-L8V2",
            json!({"organizationNumber": 800, "cardNumber": card, "cardAction": 3, "randomPin": 1, "cardActionReason": "L"}),
        ),
    ];
    for (method, path, body) in &card_ops {
        let r = other.call(method, path, body);
        assert_eq!(
            (r.status, r.code().as_str()),
            (422, "card_not_found"),
            "{method} {path}: {}",
            r.text
        );
    }
    // The credit limit takes a card or an account number.
    let r = other.call(
        "PUT",
        "/cards/credit-limit",
        &json!({"organizationNumber": 800, "accountNumber": card, "creditLimit": 1,
            "foreignUseIndicator": "0"}),
    );
    assert_eq!((r.status, r.code().as_str()), (422, "account_not_found"));
    // Customer update by card token, and customer activation.
    let r = other.call(
        "PUT",
        "/customer",
        &json!({"organizationNumber": 800, "customerNumber": card, "postalCode": "01001001",
            "sicCode": 1, "status": 1, "vipStatus": 0, "nameLine1": "INTRUSO"}),
    );
    assert_eq!((r.status, r.code().as_str()), (422, "customer_not_found"));
    let r = other.call(
        "POST",
        "/customer/activation",
        &json!({"customerActivationData": {"customerActivationKeyData": {
            "organizationNumber": 800, "customerNumber": customer, "accountNumber": account,
            "panToken": card, "dualFlag": "0", "globalQualification": "A"}}}),
    );
    assert!(
        r.status == 422 && ["customer_not_found", "card_not_found"].contains(&r.code().as_str()),
        "{}",
        r.text
    );
    // Nothing changed: the card's row and history are as they were (the dump differs
    // only by the other tenant's idempotency answers and the planted controls).
    let after = sys.dump_database();
    let card_rows = |d: &api::Dump| -> Vec<String> {
        d.text
            .lines()
            .filter(|l| l.contains(card.trim_start_matches('0')) && !l.contains("dump-control"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(card_rows(&before), card_rows(&after));
    assert!(!after.contains("INTRUSO"));
    // And the owner still uses it.
    let r = owner.call(
        "POST",
        "/cards/pin/invalid-attempts",
        &json!({"organizationNumber": 800, "cardNumber": card}),
    );
    r.expect(200);
    assert_eq!(r.json["outputArea"]["blockedIndicator"], "N");
}

fn mass_body(quantity: i64) -> Value {
    let year = 2026 + 5;
    json!({
        "organizationNumber": 800, "logo": 1, "cardType": 1, "functionType": "A", "status": 1,
        "bankOrigin": 1, "branch": 1, "minimumQuantity": 0, "quantityToCreate": quantity,
        "creditLimit": 0, "blockCode1": "", "blockCode2": "", "embosserCode": "A",
        "promoCode": "", "scheme": 0, "userCode1": 0, "userCode2": 0, "userCode3": 0,
        "customerNumber": "0000000000000000000", "expiryDate": format!("{year}-12-31"),
        "prepaidCardFlag": 1, "prepaidPlanNumber": 0, "emblem": 0
    })
}

/// A mass issue, its progress and its embosser file, tried by another tenant.
fn mass_issue_of_another_tenant(owner: &Api, other: &Api) {
    let r = owner.call("POST", "/cards/mass-card-issue-L8V3", &mass_body(3));
    r.expect(200);
    let id = r.json["outputArea"]["massIssueId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Wait for it through the owner (bounded by count, not time).
    let mut done = false;
    for _ in 0..2000 {
        let r = owner.call("GET", &format!("/cofre/v1/mass-issues/{id}"), &Value::Null);
        r.expect(200);
        if r.json["state"] == "done" {
            done = true;
            break;
        }
        std::thread::yield_now();
    }
    assert!(done, "the mass issue did not finish");
    owner
        .call(
            "GET",
            &format!("/cofre/v1/mass-issues/{id}/embosser-file"),
            &Value::Null,
        )
        .expect(200);
    for path in [
        format!("/cofre/v1/mass-issues/{id}"),
        format!("/cofre/v1/mass-issues/{id}/embosser-file"),
    ] {
        let r = other.call("GET", &path, &Value::Null);
        assert_eq!(
            (r.status, r.code().as_str()),
            (404, "mass_issue_not_found"),
            "{path}"
        );
    }
    let r = other.call(
        "GET",
        "/cards/mass-card-issue-L8V3?organizationNumber=800&logo=1&serviceType=1",
        &Value::Null,
    );
    assert_eq!((r.status, r.code().as_str()), (422, "mass_issue_not_found"));
    let mut modify = mass_body(5);
    modify["functionType"] = json!("M");
    let r = other.call("POST", "/cards/mass-card-issue-L8V3", &modify);
    assert_eq!((r.status, r.code().as_str()), (422, "mass_issue_not_found"));
}

/// Idempotency over HTTP: two clients, `Idempotency-Key`.
fn idempotency_keys(a: &Api, b: &Api) {
    // The same request id is each client's own.
    let rid = format!("shared-{}", tag());
    let ra = a.call_rid(
        "POST",
        "/customer",
        &customer_body(&format!("A{}", tag())),
        &rid,
    );
    ra.expect(200);
    let rb = b.call_rid(
        "POST",
        "/customer",
        &customer_body(&format!("B{}", tag())),
        &rid,
    );
    rb.expect(200);
    assert_eq!(rb.header("idempotent-replayed"), None);
    // Idempotency-Key takes precedence over the request id.
    let key = format!("key-{}", tag());
    let body = customer_body(&format!("K{}", tag()));
    let first = a.call_with(
        "POST",
        "/customer",
        &body,
        &request_id(),
        &[("Idempotency-Key", key.clone())],
    );
    first.expect(200);
    let again = a.call_with(
        "POST",
        "/customer",
        &body,
        &request_id(),
        &[("Idempotency-Key", key.clone())],
    );
    again.expect(200);
    assert_eq!(again.json, first.json);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let other = a.call_with(
        "POST",
        "/customer",
        &customer_body(&format!("L{}", tag())),
        &request_id(),
        &[("Idempotency-Key", key.clone())],
    );
    assert_eq!(
        (other.status, other.code().as_str()),
        (409, "request_id_reused")
    );
    // Another client's key of the same name is its own.
    let theirs = b.call_with(
        "POST",
        "/customer",
        &body,
        &request_id(),
        &[("Idempotency-Key", key)],
    );
    theirs.expect(200);
    assert_eq!(theirs.header("idempotent-replayed"), None);
    let bad = a.call_with(
        "POST",
        "/customer",
        &body,
        &request_id(),
        &[("Idempotency-Key", "x".repeat(256))],
    );
    assert_eq!(bad.status, 400);
}

/// `request_in_progress` while the first call waits on a stopped daemon.
fn in_progress(sys: &System, c: &Api) {
    let (customer, account) = customer_and_account(c, &format!("P{}", tag()));
    let body = embosser_body(&customer, &account);
    let rid = format!("inprog-{}", tag());
    sys.hsm.signal(nix::sys::signal::Signal::SIGSTOP);
    let (done, answers) = mpsc::channel();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (c, body, rid, done) = (c.clone(), body.clone(), rid.clone(), done.clone());
            std::thread::spawn(move || {
                let r = c.call_rid("POST", "/cards/embosser", &body, &rid);
                done.send(r).unwrap();
            })
        })
        .collect();
    // One of the two waits on the daemon; the other is answered at once.
    let first = answers.recv().unwrap();
    assert_eq!(
        (first.status, first.code().as_str()),
        (409, "request_in_progress"),
        "{}",
        first.text
    );
    sys.hsm.signal(nix::sys::signal::Signal::SIGCONT);
    let second = answers.recv().unwrap();
    second.expect(200);
    for t in threads {
        t.join().unwrap();
    }
    let replay = c.call_rid("POST", "/cards/embosser", &body, &rid);
    replay.expect(200);
    assert_eq!(replay.json, second.json);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
}

/// Two clients of one tenant change different fields of one card 100 times each.
fn concurrent_fields(sys: &System, a: &Api, b: &Api, card: &str) {
    let limit_client = a.clone();
    let card_a = card.to_owned();
    let limits = std::thread::spawn(move || {
        for i in 1..=100 {
            limit_client
                .call(
                    "PUT",
                    "/cards/credit-limit",
                    &json!({"organizationNumber": 800, "accountNumber": card_a,
                        "creditLimit": i, "foreignUseIndicator": "0"}),
                )
                .expect(200);
        }
    });
    let pin_client = b.clone();
    let card_b = card.to_owned();
    let pins = std::thread::spawn(move || {
        for i in 0..100 {
            let code = if i % 2 == 0 { "B" } else { "U" };
            pin_client
                .call(
                    "PUT",
                    "/cards/pin/status",
                    &json!({"organizationNumber": 800, "cardNumber": card_b,
                        "serviceFunctionCode": code, "channel": "W"}),
                )
                .expect(200);
        }
    });
    limits.join().unwrap();
    pins.join().unwrap();
    assert_eq!(api::flow::card_column(sys, card, "credit_limit"), "10000");
    assert_eq!(api::flow::card_column(sys, card, "pin_status"), "active");
}

/// The dCVV2 answer is stored sealed: not in the database.
fn dcvv2_not_at_rest(sys: &System, c: &Api, card: &str) {
    let rid = format!("dcvv2-{}", tag());
    let body = json!({"organizationNumber": 800, "cardNumber": card, "channel": "W",
        "keyAssociation": "IYY", "disableDCVV2": "N"});
    let r = c.call_rid("POST", "/cards/pin/dynamic-values", &body, &rid);
    r.expect(200);
    let code = r.json["dcvv2"].as_str().unwrap().to_owned();
    let time = r.json["dcvv2GenerationTime"].as_str().unwrap().to_owned();
    // The replay answers the same code (opened from the sealed record).
    let again = c.call_rid("POST", "/cards/pin/dynamic-values", &body, &rid);
    assert_eq!(again.json["dcvv2"], code.as_str());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let dump = sys.dump_database();
    dump.assert_absent("the dCVV2 answer", &format!("\"dcvv2\":\"{code}\""));
    dump.assert_absent("the dCVV2 answer's time", &time);
    dump.assert_absent("an answer's field", "dcvv2ExpiryMinutes");
}

fn tenants_and_idempotency(db: Db) {
    let Some(sys) = System::start_with_clients("api-tenants", db, &[("example-client-3", "15")])
    else {
        return;
    };
    let a = sys.client(CLIENT_1);
    let b = sys.client(CLIENT_2);
    let a2 = sys.extra_client(0);
    same_keys_in_two_tenants(&a, &b);
    let (customer, account) = customer_and_account(&a, &format!("T{}", tag()));
    let r = a.call(
        "POST",
        "/cards/embosser",
        &embosser_body(&customer, &account),
    );
    r.expect(200);
    let card = r.json["cardNumber"].as_str().unwrap().to_owned();
    a.call(
        "PUT",
        "/cards/activation",
        &json!({"organizationNumber": 800, "cardNumber": card, "serviceType": "S"}),
    )
    .expect(200);
    card_operations_of_another_tenant(&sys, &a, &b, (&customer, &account, &card));
    mass_issue_of_another_tenant(&a, &b);
    idempotency_keys(&a, &b);
    in_progress(&sys, &a);
    concurrent_fields(&sys, &a, &a2, &card);
    dcvv2_not_at_rest(&sys, &a, &card);
}

#[test]
fn tenants_and_idempotency_sqlite() {
    tenants_and_idempotency(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn tenants_and_idempotency_postgres() {
    tenants_and_idempotency(Db::Postgres);
}
