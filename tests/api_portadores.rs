//! The cardholder API (account opening, lookups, changes, limits, cycle, product) over
//! HTTP against real `cofre hsm` and `cofre api` processes, on SQLite and PostgreSQL,
//! with the document's own example payloads (`tests/fixtures/portador-pf.json` and
//! `portador-patch.json`: the document's copies with their stray brace and stray `f`
//! mended, nothing else), bad input (422 naming the field, nothing created) and tenant
//! isolation.
//!
//! The PF example's CPF (`45678920300`), its additional's CPF and its company CNPJ do not
//! pass their check digits; since the rules require check digits, the exact example is
//! refused naming `cpf`, and the same payload with valid documents put in their place is
//! accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use api::{CLIENT_1, CLIENT_2, Db, System};
use rand::RngExt;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A random valid CPF.
fn cpf() -> String {
    let mut d: Vec<u32> = (0..9).map(|_| rand::rng().random_range(0..10)).collect();
    for n in [9usize, 10] {
        let sum: u32 = (0..n).map(|i| d[i] * (n as u32 + 1 - i as u32)).sum();
        d.push((sum * 10) % 11 % 10);
    }
    d.iter()
        .map(|x| char::from_digit(*x, 10).unwrap())
        .collect()
}

const BASE: &str = "/api/v1/portadores";

fn portadores(db: Db) {
    let Some(sys) = System::start("api-portadores", db) else {
        return;
    };
    let c = sys.client(CLIENT_1);
    let other = sys.client(CLIENT_2);

    // The document's exact example: its CPF fails the check digits.
    let example = fixture("portador-pf.json");
    let r = c.call("POST", &format!("{BASE}/contas/pf"), &example);
    r.expect(422);
    assert_eq!(r.json["field"], "cpf");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));

    // The same payload with valid documents in place of the three fictitious ones.
    let holder_cpf = cpf();
    let mut pf = example.clone();
    pf["cpf"] = json!(holder_cpf);
    pf["adicionais"][0]["cpf"] = json!(cpf());
    pf["enderecoComercial"]["cnpj"] = json!("22130511000160");
    let r = c.call("POST", &format!("{BASE}/contas/pf"), &pf);
    r.expect(201);
    for k in [
        "contaCartao",
        "cartaoMascarado",
        "numeroManual",
        "nomeCartao",
        "diaVencimento",
        "dataValidade",
    ] {
        assert!(!r.json[k].is_null(), "{k} missing: {}", r.text);
    }
    assert_eq!(r.json["nomeCartao"], "JOSE DA SILVA");
    assert!(
        r.json["cartaoMascarado"]
            .as_str()
            .unwrap()
            .contains("XXXXXX")
    );
    let id = r.json["idPortador"].as_i64().unwrap();
    // One portador per CPF.
    let r = c.call("POST", &format!("{BASE}/contas/pf"), &pf);
    r.expect(409);
    assert_eq!(r.code(), "portador_exists");

    // PJ with the 2026 alphanumeric CNPJ.
    let pj = json!({"razaoSocial": "Padaria São João Ltda", "nomeFantasia": "Padaria São João",
        "cnpj": "12.ABC.345/01DE-35", "dataAbertura": "2010-03-01", "idLoja": 15, "limiteRotativo": 5000,
        "endereco": {"cep": "58070-000", "uf": "PB", "logradouro": "Rua A", "numero": "1"},
        "telefones": [{"tipo": "COMERCIAL", "area": "83", "telefone": "32221111"}]});
    let r = c.call("POST", &format!("{BASE}/contas/pj"), &pj);
    r.expect(201);
    let pj_id = r.json["idPortador"].as_i64().unwrap();

    // Lookups.
    let r = c.call("GET", &format!("{BASE}/{id}"), &Value::Null);
    r.expect(200);
    assert_eq!(r.json["cpf"], holder_cpf.as_str());
    assert_eq!(r.json["nome"], "José da Silva");
    let r = c.call("GET", &format!("{BASE}/{id}/informacoes"), &Value::Null);
    r.expect(200);
    assert_eq!(r.json["extratoClienteResponse"]["limite"], json!(2000.0));
    assert_eq!(r.json["ciclo"]["diaVencimento"], 10);
    assert!(r.json["produto"]["encargos"].is_object());
    assert_eq!(r.json["enderecos"]["residencial"]["uf"], "PB");
    let r = c.call(
        "GET",
        &format!("{BASE}/contas?cpf={holder_cpf}"),
        &Value::Null,
    );
    r.expect(200);
    assert_eq!(r.json.as_array().unwrap().len(), 1);
    let r = c.call("GET", &format!("{BASE}/rg?rg=999999999"), &Value::Null);
    r.expect(200);
    assert_eq!(r.json[0]["idPortador"], id);
    c.call(
        "GET",
        &format!("{BASE}/completo/cpf?cpf={holder_cpf}"),
        &Value::Null,
    )
    .expect(200);
    let r = c.call(
        "GET",
        &format!("{BASE}/simplificado/cpf?cpf={holder_cpf}"),
        &Value::Null,
    );
    r.expect(200);
    assert_eq!(r.json["id"], id);
    let r = c.call(
        "GET",
        &format!("{BASE}/cnpj?cnpj=12ABC34501DE35"),
        &Value::Null,
    );
    r.expect(200);
    assert_eq!(r.json[0]["idPortador"], pj_id);
    let r = c.call(
        "GET",
        &format!("{BASE}/contas?cnpj=12ABC34501DE35"),
        &Value::Null,
    );
    r.expect(200);
    // Accent- and case-insensitive, paginated.
    let r = c.call("GET", &format!("{BASE}/nomes?nome=JOSE%20DA"), &Value::Null);
    r.expect(200);
    assert_eq!(r.json["itens"][0]["id"], id, "{}", r.text);
    let r = c.call(
        "GET",
        &format!("{BASE}/nomes?nome=sao%20joão&limite=1"),
        &Value::Null,
    );
    r.expect(200);
    assert_eq!(r.json["itens"][0]["id"], pj_id);
    let both = c.call(
        "GET",
        &format!("{BASE}/nomes?nome=a&limite=1"),
        &Value::Null,
    );
    both.expect(422);
    let page1 = c.call(
        "GET",
        &format!("{BASE}/nomes?nome=da&limite=1"),
        &Value::Null,
    );
    page1.expect(200);
    let cursor = page1.json["proximoCursor"].as_str().unwrap().to_owned();
    let page2 = c.call(
        "GET",
        &format!("{BASE}/nomes?nome=da&limite=1&cursor={cursor}"),
        &Value::Null,
    );
    page2.expect(200);
    assert_ne!(page1.json["itens"][0]["id"], page2.json["itens"][0]["id"]);
    let r = c.call(
        "GET",
        &format!("{BASE}/lote?ids={id},{pj_id},1"),
        &Value::Null,
    );
    r.expect(200);
    assert_eq!(r.json["itens"].as_array().unwrap().len(), 2);
    assert_eq!(r.json["naoEncontrados"], json!([1]));

    // Changes: the document's PATCH example.
    let r = c.call(
        "PATCH",
        &format!("{BASE}/{id}"),
        &fixture("portador-patch.json"),
    );
    r.expect(200);
    assert_eq!(r.json["nome"], "João da Silva");
    let r = c.call(
        "GET",
        &format!("{BASE}/nomes?nome=joao%20da%20silva"),
        &Value::Null,
    );
    assert_eq!(r.json["itens"][0]["id"], id);
    // Limits, with history; exact decimals only.
    let r = c.call(
        "PATCH",
        &format!("{BASE}/{id}/limites"),
        &json!({"limiteRotativo": "2500.50", "limiteSaque": 300}),
    );
    r.expect(200);
    assert_eq!(r.json["limiteRotativo"], json!(2500.5));
    let r = c.call(
        "PATCH",
        &format!("{BASE}/{id}/limites"),
        &json!({"limiteRotativo": 100.001}),
    );
    r.expect(422);
    assert_eq!(r.json["field"], "limiteRotativo");
    let r = c.call(
        "GET",
        &format!("{BASE}/{id}/limites/historico"),
        &Value::Null,
    );
    r.expect(200);
    let hist = r.json.as_array().unwrap();
    assert_eq!(hist.len(), 3, "{}", r.text);
    // Changes made in the same call share their time; find the revolving limit's.
    let change = hist
        .iter()
        .find(|h| h["limite"] == "limiteRotativo" && h["valorNovo"] == json!(2500.5))
        .unwrap();
    assert_eq!(change["valorAnterior"], json!(2000.0));
    let r = c.call("GET", &format!("{BASE}/{id}/ciclo"), &Value::Null);
    r.expect(200);
    assert_eq!(r.json["diaVencimento"], 10);
    let r = c.call(
        "PATCH",
        &format!("{BASE}/produto"),
        &json!({"idPortador": id, "idProduto": 3}),
    );
    r.expect(200);
    assert_eq!(r.json["produto"], "platinum");
    let r = c.call(
        "PATCH",
        &format!("{BASE}/produto"),
        &json!({"idPortador": id, "idProduto": 99}),
    );
    r.expect(422);
    assert_eq!(r.json["field"], "idProduto");

    // Bad input: each rule, naming the field, creating nothing.
    let bad = |edit: &dyn Fn(&mut Value), field: &str| {
        let mut b = pf.clone();
        b["cpf"] = json!(cpf());
        b["adicionais"][0]["cpf"] = json!(cpf());
        edit(&mut b);
        let r = c.call("POST", &format!("{BASE}/contas/pf"), &b);
        r.expect(422);
        assert_eq!(r.json["field"], field, "{}", r.text);
        assert_eq!(r.code(), "invalid_field");
    };
    bad(&|b| b["cpf"] = json!("52998224726"), "cpf");
    bad(
        &|b| b["enderecoComercial"]["cnpj"] = json!("11222333000182"),
        "enderecoComercial.cnpj",
    );
    bad(
        &|b| b["enderecoResidencial"]["cep"] = json!("5807000"),
        "enderecoResidencial.cep",
    );
    bad(
        &|b| b["enderecoAlternativo"]["uf"] = json!("XX"),
        "enderecoAlternativo.uf",
    );
    bad(
        &|b| b["dataNascimento"] = json!("1980-02-30"),
        "dataNascimento",
    );
    bad(&|b| b["limiteRotativo"] = json!(100.001), "limiteRotativo");
    bad(&|b| b["renda"] = json!("12,50"), "renda");
    bad(
        &|b| b["adicionais"][0]["cpf"] = json!("11111111111"),
        "adicionais[0].cpf",
    );
    let r = c.call(
        "POST",
        &format!("{BASE}/contas/pj"),
        &json!({"razaoSocial": "X", "cnpj": "12ABC34501DE36"}),
    );
    r.expect(422);
    assert_eq!(r.json["field"], "cnpj");
    let mut wrong_store = pf.clone();
    wrong_store["cpf"] = json!(cpf());
    wrong_store["adicionais"][0]["cpf"] = json!(cpf());
    wrong_store["idLoja"] = json!(16);
    c.call("POST", &format!("{BASE}/contas/pf"), &wrong_store)
        .expect(403);
    let r = c.call(
        "GET",
        &format!("{BASE}/nomes?nome=silva&limite=100"),
        &Value::Null,
    );
    assert_eq!(
        r.json["itens"].as_array().unwrap().len(),
        1,
        "nothing else was created"
    );

    // Tenant isolation: the other store sees and changes nothing.
    other
        .call("GET", &format!("{BASE}/{id}"), &Value::Null)
        .expect(404);
    other
        .call("GET", &format!("{BASE}/{id}/informacoes"), &Value::Null)
        .expect(404);
    other
        .call(
            "PATCH",
            &format!("{BASE}/{id}"),
            &json!({"nomeSocial": "X"}),
        )
        .expect(404);
    other
        .call(
            "PATCH",
            &format!("{BASE}/{id}/limites"),
            &json!({"limiteRotativo": 1}),
        )
        .expect(404);
    other
        .call(
            "PATCH",
            &format!("{BASE}/produto"),
            &json!({"idPortador": id, "idProduto": 1}),
        )
        .expect(404);
    let r = other.call(
        "GET",
        &format!("{BASE}/contas?cpf={holder_cpf}"),
        &Value::Null,
    );
    r.expect(200);
    assert_eq!(r.json, json!([]));
    other
        .call(
            "GET",
            &format!("{BASE}/simplificado/cpf?cpf={holder_cpf}"),
            &Value::Null,
        )
        .expect(404);
    let r = other.call("GET", &format!("{BASE}/lote?ids={id}"), &Value::Null);
    assert_eq!(r.json["naoEncontrados"], json!([id]));
    let r = other.call("GET", &format!("{BASE}/nomes?nome=silva"), &Value::Null);
    assert_eq!(r.json["itens"], json!([]));
    // The same CPF may be a portador of another store.
    let mut theirs = pf.clone();
    theirs["idLoja"] = json!(16);
    other
        .call("POST", &format!("{BASE}/contas/pf"), &theirs)
        .expect(201);
    let r = c.call("GET", &format!("{BASE}/{id}"), &Value::Null);
    assert_eq!(
        r.json["nome"], "João da Silva",
        "unchanged by the other store"
    );
    assert!(!sys.api_log().contains("response breaks the spec"));
}

#[test]
fn portadores_sqlite() {
    portadores(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn portadores_postgres() {
    portadores(Db::Postgres);
}
