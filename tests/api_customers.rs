//! Customers over HTTP against real `cofre hsm` and `cofre api` processes, on SQLite and
//! PostgreSQL: add (both paths), update, activation rules, and the authentication and
//! idempotency rules every call goes through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use api::{CLIENT_1, Db, System, request_id};
use serde_json::{Value, json};

pub fn customer_body(doc: &str) -> Value {
    api::flow::customer_named("MARIA DA SILVA", doc)
}

fn customers(db: Db) {
    let Some(sys) = System::start("api-customers", db) else {
        return;
    };
    let c = sys.client(CLIENT_1);
    let r = c.call("POST", "/customer", &customer_body("12345678909"));
    r.expect(200).check("POST", "/customer/l8v2");
    let number = r.json["customerNumber"].as_str().unwrap().to_owned();
    assert_eq!(number.len(), 19);
    // Same document again: refused, nothing created.
    let r = c.call("POST", "/customer/l8v2", &customer_body("123.456.789-09"));
    r.expect(422).check("POST", "/customer/l8v2");
    assert_eq!(r.code(), "duplicate_document");
    // Malformed document.
    let r = c.call("POST", "/customer", &customer_body("12#45"));
    r.expect(422);
    assert_eq!(r.code(), "invalid_document");
    assert_eq!(
        r.json["error"]["field"],
        "/customerData/ownerCoOwnerData/ownerData/identificationNumber"
    );
    // Schema violation (email pattern), in the processor's error shape.
    let mut bad = customer_body("999");
    bad["customerData"]["ownerCoOwnerData"]["ownerData"]["email"] = json!("not an email");
    let r = c.call("POST", "/customer", &bad);
    r.expect(400);
    assert_eq!(r.code(), "schema_violation");
    assert_eq!(r.json["hasError"], true);
    // Idempotency: the same request id and body answers the first answer, once.
    let rid = request_id();
    let first = c.call_rid("POST", "/customer", &customer_body("55555555555"), &rid);
    first.expect(200);
    let again = c.call_rid("POST", "/customer", &customer_body("55555555555"), &rid);
    again.expect(200);
    assert_eq!(first.json, again.json);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let other = c.call_rid("POST", "/customer", &customer_body("66666666666"), &rid);
    other.expect(409);
    assert_eq!(other.code(), "request_id_reused");
    // Update.
    let upd = json!({"organizationNumber": 800, "customerNumber": number, "postalCode": "01001001",
        "sicCode": 1234, "status": 1, "vipStatus": 0, "nameLine1": "MARIA S. SOUZA"});
    let r = c.call("PUT", "/customer", &upd);
    r.expect(200).check("PUT", "/customer/");
    assert_eq!(r.json["outputArea"]["customerNumber"], number.as_str());
    let r = c.call(
        "PUT",
        "/customer/",
        &json!({"organizationNumber": 800, "customerNumber": "1", "postalCode": "1",
        "sicCode": 1, "status": 1, "vipStatus": 0}),
    );
    r.expect(422);
    assert_eq!(r.code(), "customer_not_found");
}

#[test]
fn customers_sqlite() {
    customers(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn customers_postgres() {
    customers(Db::Postgres);
}

#[test]
fn authentication_is_enforced() {
    let sys = System::start("api-auth", Db::Sqlite).unwrap();
    let c = sys.client(CLIENT_1);
    let body = customer_body("11122233344").to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // Stale timestamp.
    let r = c.call_raw(
        "POST",
        "/customer",
        body.as_bytes(),
        &request_id(),
        now - 600_000,
    );
    r.expect(401);
    assert_eq!(r.code(), "stale_timestamp");
    // Wrong signature: headers signed for another body.
    let rid = request_id();
    let mut headers = c.headers(&rid, now, b"{}");
    headers.retain(|(k, _)| *k != "Content-Type");
    let r = api::raw_http(&sys.addr, "POST", "/customer", &headers, body.as_bytes());
    r.expect(401);
    assert_eq!(r.code(), "invalid_signature");
    // Unknown token.
    let mut bad = c.clone();
    bad.token = "nope".into();
    let r = bad.call("POST", "/customer", &customer_body("1"));
    r.expect(401);
    assert_eq!(r.code(), "invalid_token");
    // Wrong secret at /token.
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "example-api-key:wrong",
    );
    let r = api::raw_http(
        &sys.addr,
        "POST",
        "/token",
        &[("Authorization", format!("Basic {basic}"))],
        b"grant_type=client_credentials",
    );
    r.expect(401);
    // Oversized body.
    let big = vec![b' '; 70_000];
    let r = c.call_raw("POST", "/customer", &big, &request_id(), now);
    r.expect(413);
    assert_eq!(r.code(), "body_too_large");
    // /token has the same cap.
    let r = api::raw_http(&sys.addr, "POST", "/token", &[], &big);
    r.expect(413);
    // Nothing above was stored.
    let dump = sys.dump_database();
    assert!(!dump.contains("11122233344"));
    // Unknown path: processor shape.
    let r = c.call("GET", "/nope", &Value::Null);
    r.expect(404);
    assert_eq!(r.code(), "no_such_path");
}
