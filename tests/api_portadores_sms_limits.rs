//! The cardholder API's SMS limits and code expiry (issue 17 item 9) over HTTP against
//! real `cofre hsm` and `cofre api` processes on SQLite and PostgreSQL, starting from
//! the document's PF example, with `[sms] pin_per_phone_per_day = 2` and
//! `codes_per_phone_per_day = 2` (the per-card PIN limit stays 3, so the phone's limit
//! is the one that answers):
//! * a confirmation code past its expiry is `422 code_expired` even when right (the
//!   stored expiry is moved into the past: the facade's clock is real, the rule itself
//!   is tested with an injected clock in `confirmacao`);
//! * the third code for one phone in 24 hours is `429 sms_rate_limited`, nothing queued,
//!   and the pending code survives the refused call;
//! * another portador of the same store cannot get a code sent to that phone either
//!   (the limit is the phone's, not the portador's);
//! * the third PIN for one phone is `429 sms_rate_limited` before the card's limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod api_portadores_common;

use api::{Api, CLIENT_1, Db, System};
use api_portadores_common::{BASE, cpf, execute, pf_example, problem, query, sent_code};
use serde_json::json;

const MOBILE: &str = "999990000";

/// Queued code messages for `+5583999990000`, newest last: (id, payload).
fn codes(sys: &System) -> Vec<Vec<u8>> {
    query::<(i64, String)>(
        sys,
        "SELECT id, payload_hex FROM sms_outbox WHERE purpose = 'code' AND phone = '+5583999990000' ORDER BY created_ms, id",
    )
    .into_iter()
    .map(|(_, p)| hex::decode(p).unwrap())
    .collect()
}

fn pin_messages(sys: &System) -> i64 {
    query::<(i64,)>(sys, "SELECT COUNT(*) FROM sms_outbox WHERE purpose = 'pin'")[0].0
}

/// Opens the PF example with one mobile for SMS; returns (portador id, phone id).
fn open_with_mobile(c: &Api) -> (i64, i64) {
    let mut pf = pf_example(&cpf());
    pf["adicionais"] = json!([]);
    pf["telefones"] =
        json!([{"tipo": "CELULAR", "area": "83", "telefone": MOBILE, "receberSMS": true}]);
    let r = c.call("POST", &format!("{BASE}/contas/pf"), &pf);
    r.expect(201);
    (
        r.json["idPortador"].as_i64().unwrap(),
        r.json["telefones"][0]["id"].as_i64().unwrap(),
    )
}

fn limits(db: Db) {
    let Some(mut sys) = System::start("api-portadores-sms-limits", db) else {
        return;
    };
    sys.kill_api();
    let config = sys.dir.join("api.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("pin_per_phone_per_day = 5", "pin_per_phone_per_day = 2")
        .replace("codes_per_phone_per_day = 5", "codes_per_phone_per_day = 2");
    assert!(
        text.contains("pin_per_phone_per_day = 2") && text.contains("codes_per_phone_per_day = 2")
    );
    std::fs::write(&config, text).unwrap();
    sys.restart_api();
    let c = sys.client(CLIENT_1);
    let (id, phone) = open_with_mobile(&c);
    let confirm = format!("{BASE}/{id}/telefones/recebe-sms");

    // The first code, aged past its expiry: refused although right, and voided.
    c.call("POST", &confirm, &json!({"idTelefone": phone}))
        .expect(200);
    let first = sent_code(&sys, codes(&sys).last().unwrap());
    execute(
        &sys,
        &format!("UPDATE portador_phones SET code_expires_ms = 1 WHERE id = {phone}"),
    );
    let r = c.call(
        "POST",
        &confirm,
        &json!({"idTelefone": phone, "codigo": first}),
    );
    problem(&r, 422, "code_expired");
    assert_eq!(r.json["field"], "codigo");
    problem(
        &c.call(
            "POST",
            &confirm,
            &json!({"idTelefone": phone, "codigo": first}),
        ),
        422,
        "no_pending_code",
    );

    // The second code; a third for the same phone is over the phone's limit.
    c.call("POST", &confirm, &json!({"idTelefone": phone}))
        .expect(200);
    let second = sent_code(&sys, codes(&sys).last().unwrap());
    let r = c.call("POST", &confirm, &json!({"idTelefone": phone}));
    problem(&r, 429, "sms_rate_limited");
    assert!(
        r.json["detail"].as_str().unwrap().contains("este telefone"),
        "{}",
        r.text
    );
    assert_eq!(codes(&sys).len(), 2, "the refused code was not queued");
    // Another portador of the store with the same phone: still the phone's limit.
    let (other, other_phone) = open_with_mobile(&c);
    problem(
        &c.call(
            "POST",
            &format!("{BASE}/{other}/telefones/recebe-sms"),
            &json!({"idTelefone": other_phone}),
        ),
        429,
        "sms_rate_limited",
    );
    assert_eq!(codes(&sys).len(), 2);
    // The refused call rolled back: the second code still confirms the phone.
    let r = c.call(
        "POST",
        &confirm,
        &json!({"idTelefone": phone, "codigo": second}),
    );
    r.expect(200);
    assert_eq!(r.json["status"], "CONFIRMADO");

    // PINs: two for the phone, the third refused by the phone's limit (the card's is 3).
    let pin = format!("{BASE}/{id}/senhas/sms");
    for _ in 0..2 {
        let r = c.call("POST", &pin, &json!({}));
        r.expect(200);
        assert_eq!(r.json["status"], "ENFILEIRADO");
    }
    let r = c.call("POST", &pin, &json!({}));
    problem(&r, 429, "sms_rate_limited");
    assert!(
        r.json["detail"].as_str().unwrap().contains("este telefone"),
        "{}",
        r.text
    );
    assert_eq!(pin_messages(&sys), 2, "the refused PIN was not queued");
}

#[test]
fn sms_limits_sqlite() {
    limits(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn sms_limits_postgres() {
    limits(Db::Postgres);
}
