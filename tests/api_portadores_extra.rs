//! The cardholder API (blocks, vipagem, dependents, PINs, history, phones, reference data) over HTTP against real `cofre hsm` and `cofre api`
//! processes on SQLite and PostgreSQL: blocks, vipagem, dependents, PIN change and PIN
//! delivery by SMS (the outbox payload decrypted with the example transport key),
//! history, phones with SMS confirmation, reference data, bad input per endpoint, and
//! tenant isolation.
//!
//! The portador is made through the processor flow (`POST /customer` then
//! `POST /account/v2/instantCard`, which issues an active card): idPortador is the
//! customer number.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use std::collections::HashSet;

use api::{Api, CLIENT_1, CLIENT_2, Db, System};
use cofre::crypto::cipher::BlockCipher;
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{Format, PinBlock, decipher};
use cofre::protocol::{Opcode, Status, Tag};
use serde_json::{Value, json};

const BASE: &str = "/api/v1/portadores";
/// Clear value of `transport.example` (keys-example/README.md).
const TRANSPORT: &str = "11111111111111112222222222222222";
const HOLDER_CPF: &str = "52998224725";

fn customer_body(doc: &str) -> Value {
    api::flow::customer_named("JOSE DA SILVA", doc)
}

struct Holder {
    id: i64,
    token: String,
}

fn create_portador(c: &Api, cpf: &str, logo: i64) -> Holder {
    let r = c.call("POST", "/customer", &customer_body(cpf));
    r.expect(200);
    let number = r.json["customerNumber"].as_str().unwrap().to_owned();
    let r = c.call(
        "POST",
        "/account/v2/instantCard",
        &json!({"organizationNumber": 800, "logo": logo, "customerNumber": number,
            "firstPurchaseFlag": "N", "accountCreateFlag": "Y", "sameDayProcessingType": 1,
            "cardActionFlag": 1, "accountData": {"billingCycle": 10, "creditLimit": 5000.0},
            "embosserData": {"digitalCardFlag": 0, "embossedName1": "JOSE DA SILVA"}}),
    );
    r.expect(200);
    let token = r.json["cardNumber"]
        .as_str()
        .unwrap()
        .trim_start_matches('0')
        .to_owned();
    Holder {
        id: number.parse().unwrap(),
        token,
    }
}

/// The clear PAN of a token, from the daemon (issuing-host role).
fn clear_pan(sys: &System, token: &str) -> String {
    let mut raw = sys.hsm.connect("issuing-host-1");
    let r = raw.call(Opcode::Detokenise, |w| {
        w.str(Tag::Token, token);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    r.str(Tag::Pan)
}

/// Every outbox row: (id, customer, phone, payload hex).
fn outbox(sys: &System) -> Vec<(i64, i64, String, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&sys.database).await.unwrap();
        let rows: Vec<(i64, i64, String, String)> =
            sqlx::query_as("SELECT id, customer_id, phone, payload_hex FROM sms_outbox")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        rows
    })
}

/// The outbox rows not in `seen` (which then holds them too).
fn new_messages(sys: &System, seen: &mut HashSet<i64>) -> Vec<(i64, String, Vec<u8>)> {
    outbox(sys)
        .into_iter()
        .filter(|(id, ..)| seen.insert(*id))
        .map(|(_, c, phone, hex_payload)| (c, phone, hex::decode(hex_payload).unwrap()))
        .collect()
}

/// The PIN inside an SMS payload (ISO format 0 under the transport key).
fn pin_of(payload: &[u8], pan: &str) -> String {
    let key = BlockCipher::tdes(&hex::decode(TRANSPORT).unwrap()).unwrap();
    let block = PinBlock::from_bytes(payload).unwrap();
    let pin = decipher(Format::Iso0, &key, &block, Some(&Pan::new(pan).unwrap())).unwrap();
    pin.expose_secret().to_owned()
}

fn expect_code(r: &api::Resp, status: u16, code: &str) {
    r.expect(status);
    assert_eq!(r.code(), code, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{}",
        r.text
    );
}

fn reference_data(c: &Api) {
    let r = c.call("GET", &format!("{BASE}/escolaridade"), &Value::Null);
    r.expect(200);
    let items = r.json.as_array().unwrap();
    assert_eq!(items.len(), 10);
    assert!(items.iter().any(|i| i["codigo"] == "MEDIO_COMPLETO"));
    let r = c.call("GET", &format!("{BASE}/ocupacoes"), &Value::Null);
    r.expect(200);
    assert!(
        r.json
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["codigo"] == "OUTROS" && i["id"].is_i64())
    );
    let r = c.call("GET", &format!("{BASE}/bloqueios/tipos"), &Value::Null);
    r.expect(200);
    let tipos = r.json.as_array().unwrap();
    assert!(tipos.iter().any(|t| t["codigo"] == "PERDA" && t["id"] == 1));
    assert!(tipos.iter().any(|t| t["codigo"] == "ROUBO"));
}

fn blocks(c: &Api, h: &Holder) {
    let id = h.id;
    let r = c.call(
        "POST",
        &format!("{BASE}/bloqueios"),
        &json!({"idPortador": id, "tipo": "XYZ"}),
    );
    expect_code(&r, 422, "tipo_bloqueio_invalido");
    assert_eq!(r.json["field"], "/tipo");
    let r = c.call(
        "POST",
        &format!("{BASE}/bloqueios"),
        &json!({"tipo": "PERDA"}),
    );
    expect_code(&r, 422, "missing_field");
    let r = c.call(
        "POST",
        &format!("{BASE}/bloqueios"),
        &json!({"idPortador": id, "tipo": "PERDA", "idConta": 1}),
    );
    expect_code(&r, 422, "conta_nao_encontrada");
    let r = c.call(
        "POST",
        &format!("{BASE}/bloqueios"),
        &json!({"idPortador": id.to_string(), "tipo": "PERDA", "observacao": "cliente ligou"}),
    );
    r.expect(200);
    let cards = r.json["cartoes"].as_array().unwrap();
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0]["status"], "blocked");
    assert_eq!(cards[0]["codigoBloqueio"], "PERDA");
    // A blocked card may not change its PIN: refused before the daemon, recorded.
    let r = c.call(
        "PATCH",
        &format!("{BASE}/{id}/senha"),
        &json!({"senhaAtual": "0123456789ABCDEF", "novaSenha": "0123456789ABCDEF"}),
    );
    expect_code(&r, 422, "cartao_bloqueado");
    let r = c.call(
        "POST",
        &format!("{BASE}/desbloqueios"),
        &json!({"idPortador": id}),
    );
    r.expect(200);
    assert_eq!(r.json["cartoes"][0]["status"], "active");
    assert_eq!(r.json["cartoes"][0]["codigoBloqueio"], "");
    let r = c.call(
        "POST",
        &format!("{BASE}/desbloqueios"),
        &json!({"idPortador": id}),
    );
    expect_code(&r, 422, "portador_nao_bloqueado");
}

fn vipagem(c: &Api, h: &Holder) {
    let path = format!("{BASE}/{}/vipagem", h.id);
    let r = c.call("POST", &path, &json!({"classificacao": "diamond"}));
    expect_code(&r, 422, "classificacao_invalida");
    let r = c.call("POST", &path, &json!({}));
    expect_code(&r, 422, "classificacao_invalida");
    let r = c.call("POST", &path, &json!({"classificacao": "Platinum"}));
    r.expect(200);
    assert_eq!(r.json["classificacaoAnterior"], "gold");
    assert_eq!(r.json["classificacao"], "platinum");
    assert_eq!(r.json["cartoes"], 1);
    let r = c.call("POST", &path, &json!({"classificacao": "platinum"}));
    expect_code(&r, 422, "classificacao_inalterada");
}

fn dependents(c: &Api, h: &Holder) {
    let path = format!("{BASE}/{}/dependentes", h.id);
    let dep = json!({"nome": "Maria Souza", "cpf": "111.444.777-35", "rg": "987654321",
        "dataNascimento": "1980-02-16", "sexo": "FEMININO", "grauParentesco": "OUTROS",
        "nomePersonalizado": "Mari Souza"});
    let mut bad = dep.clone();
    bad["cpf"] = json!("11144477736");
    let r = c.call("POST", &path, &json!([bad]));
    expect_code(&r, 422, "cpf_invalido");
    assert_eq!(r.json["field"], "/0/cpf");
    let mut bad = dep.clone();
    bad["dataNascimento"] = json!("1980-02-30");
    let r = c.call("POST", &path, &json!({"adicionais": [bad]}));
    expect_code(&r, 422, "data_invalida");
    assert_eq!(r.json["field"], "/adicionais/0/dataNascimento");
    let r = c.call("POST", &path, &json!([]));
    expect_code(&r, 422, "invalid_body");
    let mut own = dep.clone();
    own["cpf"] = json!(HOLDER_CPF);
    let r = c.call("POST", &path, &json!([own]));
    expect_code(&r, 422, "cpf_duplicado");

    let r = c.call("POST", &path, &json!({"adicionais": [dep]}));
    r.expect(201);
    let created = r.json.as_array().unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["idClienteTitularAssociado"], h.id);
    assert_eq!(created[0]["cpf"], "11144477735");
    assert_eq!(created[0]["status"], "A");
    // The account is platinum now: the new card has the platinum BIN.
    assert!(
        created[0]["cartaoMascarado"]
            .as_str()
            .unwrap()
            .starts_with("455557")
    );
    let r = c.call("POST", &path, &json!([dep]));
    expect_code(&r, 422, "cpf_ja_cadastrado");

    let r = c.call("GET", &path, &Value::Null);
    r.expect(200);
    assert_eq!(r.json.as_array().unwrap().len(), 1);
    assert_eq!(r.json[0]["nome"], "Maria Souza");
    assert_eq!(r.json[0]["persisted"], true);
    let r = c.call(
        "GET",
        &format!("{BASE}/dependentes/cpf?cpf=529.982.247-25"),
        &Value::Null,
    );
    r.expect(200);
    assert_eq!(r.json[0]["id"], created[0]["id"]);
    let r = c.call(
        "GET",
        &format!("{BASE}/dependentes/cpf?cpf=52998224700"),
        &Value::Null,
    );
    expect_code(&r, 422, "cpf_invalido");
    let r = c.call("GET", &format!("{BASE}/dependentes/cpf"), &Value::Null);
    expect_code(&r, 422, "cpf_invalido");
    let r = c.call(
        "GET",
        &format!("{BASE}/dependentes/cpf?cpf=39053344705"),
        &Value::Null,
    );
    expect_code(&r, 404, "portador_not_found");
}

/// Adds and confirms a phone; returns its id.
fn phones(sys: &System, c: &Api, h: &Holder, seen: &mut HashSet<i64>) -> i64 {
    let path = format!("{BASE}/{}/telefones", h.id);
    let r = c.call(
        "POST",
        &path,
        &json!({"tipo": "CELULAR", "area": "1", "telefone": "999990000"}),
    );
    expect_code(&r, 422, "invalid_field");
    assert_eq!(r.json["field"], "/area");
    let r = c.call(
        "POST",
        &path,
        &json!([{"tipo": "FAX", "area": "11", "telefone": "999990000"}]),
    );
    expect_code(&r, 422, "invalid_field");
    assert_eq!(r.json["field"], "/0/tipo");
    let r = c.call(
        "POST",
        &path,
        &json!([{"tipo": "CELULAR", "area": "11", "telefone": "999990000", "receberSMS": true},
            {"tipo": "RESIDENCIAL", "ramal": "4020", "area": "83", "telefone": "32221111"}]),
    );
    r.expect(201);
    let mobile = r.json[0]["id"].as_i64().unwrap();
    let home = r.json[1]["id"].as_i64().unwrap();
    assert_eq!(r.json[0]["smsConfirmado"], false);
    let r = c.call("GET", &path, &Value::Null);
    r.expect(200);
    assert_eq!(r.json.as_array().unwrap().len(), 2);

    // No confirmed phone yet: no PIN by SMS.
    let r = c.call("POST", &format!("{BASE}/{}/senhas/sms", h.id), &json!({}));
    expect_code(&r, 422, "telefone_nao_confirmado");

    let confirm = format!("{path}/recebe-sms");
    let r = c.call(
        "POST",
        &confirm,
        &json!({"idTelefone": mobile, "codigo": "12ab56"}),
    );
    expect_code(&r, 422, "codigo_invalido");
    let r = c.call(
        "POST",
        &confirm,
        &json!({"idTelefone": mobile, "codigo": "123456"}),
    );
    expect_code(&r, 422, "codigo_inexistente");
    let r = c.call("POST", &confirm, &json!({"idTelefone": 1}));
    expect_code(&r, 404, "telefone_nao_encontrado");
    let r = c.call("POST", &confirm, &json!({"idTelefone": mobile}));
    r.expect(200);
    assert_eq!(r.json["status"], "CODIGO_ENVIADO");
    let sent = new_messages(sys, seen);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, h.id);
    assert_eq!(sent[0].1, "+5511999990000");
    let text = String::from_utf8(sent[0].2.clone()).unwrap();
    let code = text.rsplit(' ').next().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = c.call(
        "POST",
        &confirm,
        &json!({"idTelefone": mobile, "codigo": wrong}),
    );
    expect_code(&r, 422, "codigo_invalido");
    let r = c.call(
        "POST",
        &confirm,
        &json!({"idTelefone": mobile.to_string(), "codigo": code}),
    );
    r.expect(200);
    assert_eq!(r.json["status"], "CONFIRMADO");
    let r = c.call("POST", &confirm, &json!({"idTelefone": mobile}));
    expect_code(&r, 422, "telefone_ja_confirmado");

    // Five wrong codes void the code: the right one no longer works.
    let r = c.call("POST", &confirm, &json!({"idTelefone": home}));
    r.expect(200);
    let sent = new_messages(sys, seen);
    let text = String::from_utf8(sent[0].2.clone()).unwrap();
    let code = text.rsplit(' ').next().unwrap().to_owned();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let r = c.call(
            "POST",
            &confirm,
            &json!({"idTelefone": home, "codigo": wrong}),
        );
        expect_code(&r, 422, "codigo_invalido");
    }
    let r = c.call(
        "POST",
        &confirm,
        &json!({"idTelefone": home, "codigo": code}),
    );
    expect_code(&r, 422, "codigo_inexistente");

    let r = c.call("DELETE", &format!("{path}/{home}"), &Value::Null);
    r.expect(200);
    let r = c.call("DELETE", &format!("{path}/{home}"), &Value::Null);
    expect_code(&r, 404, "telefone_nao_encontrado");
    let r = c.call("DELETE", &format!("{path}/12x"), &Value::Null);
    expect_code(&r, 422, "invalid_number");
    let r = c.call("GET", &path, &Value::Null);
    assert_eq!(r.json.as_array().unwrap().len(), 1);
    mobile
}

/// Delivers the PIN by SMS and reads it back from the outbox.
fn sms_pin(sys: &System, c: &Api, h: &Holder, pan: &str, seen: &mut HashSet<i64>) -> String {
    let r = c.call("POST", &format!("{BASE}/{}/senhas/sms", h.id), &json!({}));
    r.expect(200);
    assert_eq!(r.json["status"], "ENVIADO");
    assert!(
        !r.text.contains("999990000"),
        "the phone is masked: {}",
        r.text
    );
    let sent = new_messages(sys, seen);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].2.len(), 8);
    pin_of(&sent[0].2, pan)
}

fn pins(sys: &System, c: &Api, h: &Holder, seen: &mut HashSet<i64>) -> String {
    let pan = clear_pan(sys, &h.token);
    let pin = sms_pin(sys, c, h, &pan, seen);
    assert_eq!(pin.len(), 4);
    let new_pin = if pin == "4321" { "1234" } else { "4321" };
    let path = format!("{BASE}/{}/senha", h.id);
    let r = c.call(
        "PATCH",
        &path,
        &json!({"senhaAtual": "XYZ", "novaSenha": "0123456789ABCDEF"}),
    );
    expect_code(&r, 422, "bloco_senha_invalido");
    assert_eq!(r.json["field"], "/senhaAtual");
    let block = |p: &str| hex::encode_upper(api::daemon::iso0_block(&pan, p));
    let r = c.call(
        "PATCH",
        &path,
        &json!({"senhaAtual": block(&pin), "novaSenha": block(new_pin), "keyAssociation": "NOPE"}),
    );
    expect_code(&r, 422, "key_association_invalida");
    let r = c.call(
        "PATCH",
        &path,
        &json!({"senhaAtual": block(&pin), "novaSenha": block(new_pin), "keyAssociation": "IYY"}),
    );
    r.expect(200);
    assert_eq!(r.json["status"], "SENHA_ALTERADA");
    // The old PIN is wrong now.
    let r = c.call(
        "PATCH",
        &path,
        &json!({"senhaAtual": block(&pin), "novaSenha": block(new_pin)}),
    );
    expect_code(&r, 422, "senha_invalida");
    // The delivered PIN is the new one.
    assert_eq!(sms_pin(sys, c, h, &pan, seen), new_pin);
    pan
}

fn history(c: &Api, h: &Holder) {
    let path = format!("{BASE}/{}/historico", h.id);
    let r = c.call("GET", &format!("{path}?limite=2"), &Value::Null);
    r.expect(200);
    let first = r.json["itens"].as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    let cursor = r.json["proximoCursor"].as_str().unwrap().to_owned();
    let r = c.call(
        "GET",
        &format!("{path}?limite=100&cursor={cursor}"),
        &Value::Null,
    );
    r.expect(200);
    let rest = r.json["itens"].as_array().unwrap();
    assert!(rest.len() >= 6, "{}", r.text);
    assert!(r.json.get("proximoCursor").is_none());
    assert!(rest.iter().all(|i| !first.contains(i)));
    let actions: Vec<&str> = first
        .iter()
        .chain(rest)
        .filter_map(|i| i["acao"].as_str())
        .collect();
    for a in ["bloqueio", "desbloqueio", "vipagem", "senha", "create"] {
        assert!(actions.contains(&a), "{a} missing in {actions:?}");
    }
    let r = c.call("GET", &format!("{path}?limite=0"), &Value::Null);
    expect_code(&r, 422, "limite_invalido");
    let r = c.call("GET", &format!("{path}?cursor=abc"), &Value::Null);
    expect_code(&r, 422, "cursor_invalido");

    let r = c.call(
        "GET",
        &format!("{BASE}/{}/inadimplencias", h.id),
        &Value::Null,
    );
    r.expect(200);
    assert_eq!(r.json, json!([]));

    let occ = format!("{BASE}/{}/ocorrencias", h.id);
    let today = cofre::api::issuing::today();
    let r = c.call(
        "GET",
        &format!("{occ}?inicio=2000-01-01&fim={today}"),
        &Value::Null,
    );
    r.expect(200);
    let kinds: Vec<&str> = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["tipo"].as_str())
        .collect();
    for k in [
        "bloqueio",
        "senha_recusada",
        "desbloqueio",
        "vipagem",
        "telefone_confirmado",
        "senha_enviada_sms",
        "senha_alterada",
        "senha_invalida",
    ] {
        assert!(kinds.contains(&k), "{k} missing in {kinds:?}");
    }
    let r = c.call(
        "GET",
        &format!("{occ}?inicio=2000-01-01&fim=2000-12-31"),
        &Value::Null,
    );
    r.expect(200);
    assert_eq!(r.json, json!([]));
    let r = c.call(
        "GET",
        &format!("{occ}?inicio=2024-02-02&fim=2024-02-01"),
        &Value::Null,
    );
    expect_code(&r, 422, "periodo_invalido");
    let r = c.call("GET", &format!("{occ}?inicio=2023-02-29"), &Value::Null);
    expect_code(&r, 422, "data_invalida");
    assert_eq!(r.json["field"], "inicio");
}

fn isolation(other: &Api, h: &Holder, phone: i64) {
    let id = h.id;
    let calls: Vec<(&str, String, Value)> = vec![
        (
            "POST",
            format!("{BASE}/bloqueios"),
            json!({"idPortador": id, "tipo": "PERDA"}),
        ),
        (
            "POST",
            format!("{BASE}/desbloqueios"),
            json!({"idPortador": id}),
        ),
        (
            "POST",
            format!("{BASE}/{id}/vipagem"),
            json!({"classificacao": "gold"}),
        ),
        ("POST", format!("{BASE}/{id}/dependentes"), json!([])),
        ("GET", format!("{BASE}/{id}/dependentes"), Value::Null),
        (
            "GET",
            format!("{BASE}/dependentes/cpf?cpf={HOLDER_CPF}"),
            Value::Null,
        ),
        (
            "PATCH",
            format!("{BASE}/{id}/senha"),
            json!({"senhaAtual": "0123456789ABCDEF", "novaSenha": "0123456789ABCDEF"}),
        ),
        ("POST", format!("{BASE}/{id}/senhas/sms"), json!({})),
        ("GET", format!("{BASE}/{id}/historico"), Value::Null),
        ("GET", format!("{BASE}/{id}/inadimplencias"), Value::Null),
        ("GET", format!("{BASE}/{id}/ocorrencias"), Value::Null),
        (
            "POST",
            format!("{BASE}/{id}/telefones"),
            json!({"tipo": "CELULAR", "area": "11", "telefone": "988887777"}),
        ),
        ("GET", format!("{BASE}/{id}/telefones"), Value::Null),
        (
            "DELETE",
            format!("{BASE}/{id}/telefones/{phone}"),
            Value::Null,
        ),
        (
            "POST",
            format!("{BASE}/{id}/telefones/recebe-sms"),
            json!({"idTelefone": phone}),
        ),
    ];
    for (method, path, body) in calls {
        let r = other.call(method, &path, &body);
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
        assert_eq!(r.code(), "portador_not_found", "{method} {path}");
    }
}

fn portadores_extra(db: Db) {
    let Some(sys) = System::start("api-portadores-extra", db) else {
        return;
    };
    let c = sys.client(CLIENT_1);
    let h = create_portador(&c, HOLDER_CPF, 2);
    let mut seen = HashSet::new();
    reference_data(&c);
    blocks(&c, &h);
    vipagem(&c, &h);
    dependents(&c, &h);
    let phone = phones(&sys, &c, &h, &mut seen);
    let pan = pins(&sys, &c, &h, &mut seen);
    history(&c, &h);
    isolation(&sys.client(CLIENT_2), &h, phone);
    // Unknown and malformed ids.
    let r = c.call("GET", &format!("{BASE}/999/telefones"), &Value::Null);
    expect_code(&r, 404, "portador_not_found");
    let r = c.call("GET", &format!("{BASE}/12a/historico"), &Value::Null);
    expect_code(&r, 422, "invalid_id");
    // Nothing clear in the database, and the phone survived the other tenant.
    let dump = sys.dump_database();
    assert!(!dump.contains(&pan), "a clear PAN is stored");
    let r = c.call("GET", &format!("{BASE}/{}/telefones", h.id), &Value::Null);
    assert_eq!(r.json.as_array().unwrap().len(), 1);
}

#[test]
fn portadores_extra_sqlite() {
    portadores_extra(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn portadores_extra_postgres() {
    portadores_extra(Db::Postgres);
}
