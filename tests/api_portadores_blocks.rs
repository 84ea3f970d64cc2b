//! Final blocks of the cardholder API (issue 17 item 4) for PERDA, FRAUDE and OBITO
//! (ROUBO is in `api_portadores_extra`), over HTTP against real `cofre hsm` and
//! `cofre api` processes on SQLite and PostgreSQL, each on a portador opened from the
//! document's PF example:
//! * the block answers `definitivo: true` and the card's final status word;
//! * `POST /desbloqueios` of the old card is `422 final_block`, and the old card's PIN
//!   and security codes are refused where they answered before (`422`, `card_blocked`
//!   or `card_not_active` as the processor path words a lost or cancelled card);
//! * PERDA and FRAUDE issue a new active card whose security codes are given, and the
//!   holder's views show it; OBITO issues none.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod api_portadores_common;

use api::{Api, CLIENT_1, Db, System};
use api_portadores_common::{BASE, cpf, pf_example, problem};
use serde_json::{Value, json};

fn security_codes(c: &Api, card: &str) -> api::Resp {
    c.call(
        "POST",
        "/cards/pin/security-codes",
        &json!({"organizationNumber": 800, "cardNumber": card,
            "channelIndicator": "W", "keyAssociation": "IYY"}),
    )
}

/// The code of an answer of the processor paths.
fn refused_as(r: &api::Resp) -> (u16, String) {
    (r.status, r.code())
}

/// A PIN block that is not the card's PIN (the daemon checks the status first).
const SOME_BLOCK: &str = "0412345678901234";

/// Blocks a new portador's card for `tipo`: the card ends `status_word`, the processor
/// paths refuse it, and a new card replaces it when `replaced`.
fn final_block(c: &Api, tipo: &str, status_word: &str, replaced: bool) {
    let mut pf = pf_example(&cpf());
    pf["adicionais"] = json!([]);
    let r = c.call("POST", &format!("{BASE}/contas/pf"), &pf);
    r.expect(201);
    let id = r.json["idPortador"].as_i64().unwrap();
    let card = r.json["idCartao"].as_i64().unwrap();
    let view = c.call("GET", &format!("{BASE}/{id}"), &Value::Null).json;
    let token = view["cartao"].as_str().unwrap().to_owned();
    // Before the block the card answers: its codes are given, a PIN is checked.
    security_codes(c, &token).expect(200);
    let before = refused_as(&api::flow::validate(c, &token, SOME_BLOCK));
    assert_ne!(before.1, "card_blocked", "{tipo}: {before:?}");

    let r = c.call(
        "POST",
        &format!("{BASE}/bloqueios"),
        &json!({"idPortador": id, "tipo": tipo}),
    );
    r.expect(200);
    assert_eq!(r.json["tipo"]["definitivo"], true, "{tipo}: {}", r.text);
    let old = &r.json["cartoes"][0];
    assert_eq!(old["idCartao"], card, "{}", r.text);
    assert_eq!(old["status"], status_word, "{}", r.text);
    assert_eq!(old["codigoBloqueio"], tipo);
    problem(
        &c.call(
            "POST",
            &format!("{BASE}/desbloqueios"),
            &json!({"idPortador": id, "idCartao": card}),
        ),
        422,
        "final_block",
    );
    for r in [
        api::flow::validate(c, &token, SOME_BLOCK),
        security_codes(c, &token),
    ] {
        let (status, code) = refused_as(&r);
        assert!(
            status == 422 && ["card_blocked", "card_not_active"].contains(&code.as_str()),
            "{tipo}: {}",
            r.text
        );
    }
    let view = c.call("GET", &format!("{BASE}/{id}"), &Value::Null).json;
    if replaced {
        let new_card = old["novoCartao"]["idCartao"].as_i64().unwrap();
        assert_ne!(new_card, card);
        assert_eq!(view["idCartao"], new_card, "{tipo}: {view}");
        assert_eq!(view["statusCartao"], "ATIVO");
        let new_token = view["cartao"].as_str().unwrap();
        assert_ne!(new_token, token);
        security_codes(c, new_token).expect(200);
    } else {
        assert!(old["novoCartao"].is_null(), "{tipo}: {}", r.text);
        let r = c.call(
            "POST",
            &format!("{BASE}/bloqueios"),
            &json!({"idPortador": id, "tipo": tipo, "emitirNovoCartao": true}),
        );
        problem(&r, 422, "invalid_field");
    }
}

fn blocks(db: Db) {
    let Some(sys) = System::start("api-portadores-blocks", db) else {
        return;
    };
    let c = sys.client(CLIENT_1);
    final_block(&c, "PERDA", "PERDIDO", true);
    final_block(&c, "FRAUDE", "CANCELADO", true);
    final_block(&c, "OBITO", "CANCELADO", false);
}

#[test]
fn final_blocks_sqlite() {
    blocks(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn final_blocks_postgres() {
    blocks(Db::Postgres);
}
