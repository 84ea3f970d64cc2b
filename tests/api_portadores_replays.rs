//! Replays of the cardholder API's writing calls, whose daemon calls run before the
//! writer's transaction (issue 15 applied to `/api/v1/portadores`), over HTTP against
//! real `cofre hsm` and `cofre api` processes on SQLite and PostgreSQL, from the
//! document's PF example:
//! * the same request id again answers the first answer byte for byte and changes
//!   nothing: one portador, one dependent, one queued PIN message, one block;
//! * the same request id sent by several connections at once: one portador is made, and
//!   every success is that portador's answer (the others `409 request_in_progress`);
//! * the same request id with another body is `request_id_reused`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod api_portadores_common;

use api::{Api, CLIENT_1, Db, System, request_id};
use api_portadores_common::{BASE, cpf, pf_example, problem, query, sent_code};
use serde_json::{Value, json};

fn count(sys: &System, sql: &str) -> i64 {
    query::<(i64,)>(sys, sql)[0].0
}

/// Sends `body` twice under one request id; both answers must be the same success.
fn twice(c: &Api, method: &str, path: &str, body: &Value) -> Value {
    let rid = request_id();
    let first = c.call_rid(method, path, body, &rid);
    assert!((200..300).contains(&first.status), "{}", first.text);
    let again = c.call_rid(method, path, body, &rid);
    assert_eq!(again.status, first.status, "{}", again.text);
    assert_eq!(
        again.text, first.text,
        "the replay answers the first answer"
    );
    first.json
}

fn replays(db: Db) {
    let Some(sys) = System::start("api-portadores-replays", db) else {
        return;
    };
    let c = sys.client(CLIENT_1);
    let holder = cpf();
    let mut pf = pf_example(&holder);
    pf["telefones"] =
        json!([{"tipo": "CELULAR", "area": "83", "telefone": "999990000", "receberSMS": true}]);

    // Opening: the cards are issued before the transaction; a replay makes nothing.
    let opened = twice(&c, "POST", &format!("{BASE}/contas/pf"), &pf);
    let id = opened["idPortador"].as_i64().unwrap();
    let contas = c.call("GET", &format!("{BASE}/contas?cpf={holder}"), &Value::Null);
    assert_eq!(contas.json.as_array().unwrap().len(), 1, "{}", contas.text);
    let cards_after_opening = count(&sys, "SELECT COUNT(*) FROM cards");
    assert_eq!(
        cards_after_opening, 2,
        "the holder's card and its additional's"
    );

    // A dependent added twice under one id: one dependent, one more card.
    let dep = json!([{"nome": "Ana Souza", "cpf": cpf(), "dataNascimento": "1990-02-16",
        "grauParentesco": "FILHO"}]);
    twice(&c, "POST", &format!("{BASE}/{id}/dependentes"), &dep);
    let deps = c.call("GET", &format!("{BASE}/{id}/dependentes"), &Value::Null);
    assert_eq!(deps.json.as_array().unwrap().len(), 2, "{}", deps.text);
    assert_eq!(
        count(&sys, "SELECT COUNT(*) FROM cards"),
        cards_after_opening + 1
    );

    // The PIN by SMS: the daemon's PIN block is made before the transaction; a replay
    // queues nothing more.
    let phone = opened["telefones"][0]["id"].as_i64().unwrap();
    let confirm = format!("{BASE}/{id}/telefones/recebe-sms");
    c.call("POST", &confirm, &json!({"idTelefone": phone}))
        .expect(200);
    let (payload,) = query::<(String,)>(
        &sys,
        "SELECT payload_hex FROM sms_outbox WHERE purpose = 'code'",
    )[0]
    .clone();
    let code = sent_code(&sys, &hex::decode(payload).unwrap());
    c.call(
        "POST",
        &confirm,
        &json!({"idTelefone": phone, "codigo": code}),
    )
    .expect(200);
    twice(&c, "POST", &format!("{BASE}/{id}/senhas/sms"), &json!({}));
    assert_eq!(
        count(
            &sys,
            "SELECT COUNT(*) FROM sms_outbox WHERE purpose = 'pin'"
        ),
        1
    );

    // A final block: one replacement card, however often the call is replayed.
    let block = json!({"idPortador": id, "tipo": "PERDA"});
    let blocked = twice(&c, "POST", &format!("{BASE}/bloqueios"), &block);
    assert!(
        blocked["cartoes"][0]["novoCartao"]["idCartao"].is_i64(),
        "{blocked}"
    );
    assert_eq!(
        count(&sys, "SELECT COUNT(*) FROM cards"),
        cards_after_opening + 2
    );

    // The same id with another body.
    let rid = request_id();
    c.call_rid(
        "PATCH",
        &format!("{BASE}/{id}"),
        &json!({"nomeSocial": "Zé"}),
        &rid,
    )
    .expect(200);
    let r = c.call_rid(
        "PATCH",
        &format!("{BASE}/{id}"),
        &json!({"nomeSocial": "Outro"}),
        &rid,
    );
    problem(&r, r.status, "request_id_reused");
    assert_eq!(r.status / 100, 4);

    // One request id from several connections at once.
    let other = cpf();
    let body = pf_example(&other);
    let rid = request_id();
    let answers: Vec<api::Resp> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..4)
            .map(|_| s.spawn(|| c.call_rid("POST", &format!("{BASE}/contas/pf"), &body, &rid)))
            .collect();
        calls.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let made: Vec<&api::Resp> = answers.iter().filter(|r| r.status == 201).collect();
    assert!(
        !made.is_empty(),
        "{:?}",
        answers.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for r in &answers {
        if r.status != 201 {
            problem(r, 409, "request_in_progress");
        } else {
            assert_eq!(r.text, made[0].text);
        }
    }
    let contas = c.call("GET", &format!("{BASE}/contas?cpf={other}"), &Value::Null);
    assert_eq!(contas.json.as_array().unwrap().len(), 1, "{}", contas.text);
}

#[test]
fn replays_sqlite() {
    replays(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn replays_postgres() {
    replays(Db::Postgres);
}
