//! The cardholder API as a Brazilian issuer's integrator tries it, with the document's
//! own payloads (`tests/fixtures/portador-pf.json` and `portador-patch.json`: the 003
//! document's copies with their stray brace and stray `f` mended, nothing else), over
//! HTTP against real `cofre hsm` and `cofre api` processes on SQLite and PostgreSQL:
//! account opening with its additionals, phones and references (issue 17 item 3), the
//! holder's CPF listing its dependents (1), the holder's own card in every view (2),
//! the full view with the document's 49 fields and what PATCH changed (7), limits in the
//! views (5), the cycle (6), lookups, the PJ with the alphanumeric CNPJ, and two tenants.
//!
//! The PF example's CPF (`45678920300`), its additional's CPF and its company CNPJ do not
//! pass their check digits: the exact example is refused listing all three, and the
//! same payload with valid documents in their place is accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod api_portadores_common;

use api::{CLIENT_1, CLIENT_2, Db, System};
use api_portadores_common::{BASE, cpf, fixture, invalid_names, pf_example, problem};
use serde_json::{Value, json};

/// The 49 top-level fields of the document's `GET /{idPortador}` example.
const DOCUMENT_FIELDS: [&str; 49] = [
    "id",
    "nome",
    "rg",
    "cpf",
    "cartao",
    "email",
    "numeroCartaoTruncado",
    "clienteDataNascimento",
    "rendas",
    "statusCliente",
    "descricaoStatusCliente",
    "statusAnalise",
    "contratoImpresso",
    "estanoCobranca",
    "ultimoMotivoBloqueioCliente",
    "extratoClienteResponse",
    "valorLancamentosFuturos",
    "pontuacaoFidelidadeResponse",
    "statusFaturaDigital",
    "boletos",
    "faturaFechada",
    "faturaFutura",
    "statusCartao",
    "melhorDiaCompra",
    "senhaExpirada",
    "ciclo",
    "dependentes",
    "dataFechamentoProxFatura",
    "produto",
    "dataCadastro",
    "taxas",
    "estaEmPerda",
    "numeroCartaoCriptografado",
    "idCartao",
    "permiteAcessoApp",
    "dataEmissaoRG",
    "estaEmAtraso",
    "orgaoEmissorRG",
    "unidadeFederativaRG",
    "totalTentativasValidacaoCartao",
    "enderecoResidencial",
    "inibirEnvioFaturaGrafica",
    "enderecoComercial",
    "enderecoAlternativo",
    "transicaoBandeira",
    "utilizaOverLimitPersonalizado",
    "diasAtrasoTotal",
    "diasProvisionamento",
    "produtoTransicaoBandeira",
];

fn get(c: &api::Api, path: &str) -> Value {
    let r = c.call("GET", path, &Value::Null);
    r.expect(200);
    r.json
}

/// Item 7: one vocabulary in every view: status words in Portuguese capitals
/// (`ATIVO`, never `active`), masks with `X` (never `*`), no internal snake_case keys.
fn one_vocabulary(path: &str, v: &Value) {
    match v {
        Value::String(s) => {
            assert!(
                ![
                    "active",
                    "inactive",
                    "blocked",
                    "lost",
                    "stolen",
                    "cancelled",
                    "replaced"
                ]
                .contains(&s.as_str()),
                "{path}: internal status word {s}"
            );
            assert!(!s.contains('*'), "{path}: another mask {s}");
        }
        Value::Array(items) => items.iter().for_each(|i| one_vocabulary(path, i)),
        Value::Object(m) => {
            for (k, x) in m {
                assert!(!k.contains('_'), "{path}: internal key {k}");
                one_vocabulary(path, x);
            }
        }
        _ => {}
    }
}

fn portadores(db: Db) {
    let Some(sys) = System::start("api-portadores", db) else {
        return;
    };
    let c = sys.client(CLIENT_1);
    let other = sys.client(CLIENT_2);

    // The document's exact example: its three documents fail their check digits, all
    // listed at once.
    let r = c.call(
        "POST",
        &format!("{BASE}/contas/pf"),
        &fixture("portador-pf.json"),
    );
    problem(&r, 422, "invalid_field");
    assert_eq!(
        invalid_names(&r),
        ["cpf", "enderecoComercial.cnpj", "adicionais[0].cpf"],
        "{}",
        r.text
    );

    // Item 3: the same payload with valid documents creates the additional, the phone
    // and the reference it carries.
    let holder_cpf = cpf();
    let pf = pf_example(&holder_cpf);
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
    let masked = r.json["cartaoMascarado"].as_str().unwrap().to_owned();
    assert!(
        masked.contains("XXXXXX") && !masked.contains('*'),
        "{masked}"
    );
    let id = r.json["idPortador"].as_i64().unwrap();
    let holder_card = r.json["idCartao"].as_i64().unwrap();
    assert_eq!(
        r.json["adicionais"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );
    let deps = get(&c, &format!("{BASE}/{id}/dependentes"));
    assert_eq!(deps.as_array().unwrap().len(), 1);
    assert_eq!(deps[0]["nome"], "Maria Souza");
    assert_eq!(deps[0]["cpf"], pf["adicionais"][0]["cpf"]);
    assert_eq!(deps[0]["idGrauParentesco"], 13, "OUTROS is kinship 13");
    assert_eq!(deps[0]["statusCartao"], "ATIVO");
    assert_eq!(deps[0]["status"], "A");
    let dep_id = deps[0]["id"].as_i64().unwrap();
    let dep_card_masked = deps[0]["cartaoMascarado"].as_str().unwrap().to_owned();
    let phones = get(&c, &format!("{BASE}/{id}/telefones"));
    assert_eq!(phones.as_array().unwrap().len(), 1);
    assert_eq!(phones[0]["telefone"], "999999999");
    assert_eq!(phones[0]["area"], "83");
    // One portador per CPF.
    problem(
        &c.call("POST", &format!("{BASE}/contas/pf"), &pf),
        409,
        "portador_exists",
    );

    // Item 1: the holder's CPF lists its dependents; a dependent's CPF is no titular.
    let list = get(&c, &format!("{BASE}/dependentes/cpf?cpf={holder_cpf}"));
    assert_eq!(list[0]["id"], dep_id);
    let dep_cpf = pf["adicionais"][0]["cpf"].as_str().unwrap();
    problem(
        &c.call(
            "GET",
            &format!("{BASE}/dependentes/cpf?cpf={dep_cpf}"),
            &Value::Null,
        ),
        404,
        "portador_not_found",
    );

    // Item 2 and 7: the holder's views show the holder's card, and the whole document.
    let full = get(&c, &format!("{BASE}/{id}"));
    for k in DOCUMENT_FIELDS {
        assert!(full.get(k).is_some(), "{k} missing in GET /{{id}}: {full}");
    }
    assert_eq!(full["idCartao"], holder_card);
    assert_eq!(full["numeroCartaoTruncado"], masked.as_str());
    assert_ne!(full["numeroCartaoTruncado"], dep_card_masked.as_str());
    assert_eq!(full["cpf"], holder_cpf.as_str());
    assert_eq!(
        full["idLoja"], 15,
        "idLoja is an integer in answers as in requests"
    );
    assert_eq!(full["statusCartao"], "ATIVO");
    assert_eq!(full["statusCliente"], "ATIVO");
    assert_eq!(full["rg"], "999999999");
    assert_eq!(full["orgaoEmissorRG"], "SSPPB");
    assert_eq!(full["clienteDataNascimento"], "1980-05-17");
    assert_eq!(full["rendas"][0]["valor"], json!(2100.0));
    assert_eq!(full["enderecoResidencial"]["cidade"], "João Pessoa");
    assert_eq!(full["enderecoComercial"]["cnpj"], "22130511000160");
    assert_eq!(full["enderecoAlternativo"]["tipo"], "R");
    assert!(full.get("enderecos").is_none());
    assert_eq!(full["dependentes"][0]["id"], dep_id);
    assert_eq!(full["dependentes"][0]["grauParentesco"], 13);
    for internal in ["account_id", "card_id", "tenant", "dependent_id"] {
        assert!(
            full["dependentes"][0].get(internal).is_none(),
            "{internal} shown"
        );
    }
    assert_eq!(full["extratoClienteResponse"]["limite"], json!(2000.0));
    assert_eq!(full["sexo"], "MASCULINO");
    assert_eq!(full["nomeMae"], "Maria da Silva");
    assert_eq!(full["idProfissao"], 2);
    assert_eq!(full["ocupacao"], "OUTROS");
    assert_eq!(full["referencias"][0]["nome"], "Maria Aparecida dos Santos");
    assert_eq!(full["totalTentativasValidacaoCartao"], 0);
    assert_eq!(full["senhaExpirada"], false);
    for path in [
        format!("{BASE}/{id}/informacoes"),
        format!("{BASE}/completo/cpf?cpf={holder_cpf}"),
    ] {
        let v = get(&c, &path);
        assert_eq!(v, full, "{path} differs from GET /{{id}}");
    }
    let short = get(&c, &format!("{BASE}/simplificado/cpf?cpf={holder_cpf}"));
    assert_eq!(short["idCartao"], holder_card);
    assert_eq!(short["numeroCartaoTruncado"], masked.as_str());
    let contas = get(&c, &format!("{BASE}/contas?cpf={holder_cpf}"));
    assert_eq!(contas.as_array().unwrap().len(), 1);
    assert_eq!(contas[0]["cartaoMascarado"], masked.as_str());
    assert_eq!(contas[0]["statusCartao"], "ATIVO");
    for path in [
        format!("{BASE}/{id}"),
        format!("{BASE}/simplificado/cpf?cpf={holder_cpf}"),
        format!("{BASE}/contas?cpf={holder_cpf}"),
        format!("{BASE}/{id}/dependentes"),
        format!("{BASE}/dependentes/cpf?cpf={holder_cpf}"),
        format!("{BASE}/{dep_id}"),
        format!("{BASE}/{id}/telefones"),
    ] {
        one_vocabulary(&path, &get(&c, &path));
    }
    // A dependent is a portador too: its own CPF and card.
    let dep = get(&c, &format!("{BASE}/{dep_id}"));
    assert_eq!(dep["cpf"], dep_cpf);
    assert_eq!(dep["numeroCartaoTruncado"], dep_card_masked.as_str());
    assert_eq!(dep["idPortadorTitular"], id);

    // The document's PATCH example, then every view shows what changed.
    let r = c.call(
        "PATCH",
        &format!("{BASE}/{id}"),
        &fixture("portador-patch.json"),
    );
    r.expect(200);
    assert_eq!(r.json["nome"], "João da Silva");
    let full = get(&c, &format!("{BASE}/{id}"));
    assert_eq!(full["nomeSocial"], "João Gomes");
    assert_eq!(full["email"], "joao.silva@email.com");
    assert_eq!(full["nacionalidade"], "BRASILEIRA");
    assert_eq!(full["nomePai"], "José da Silva");
    assert_eq!(full["estadoCivil"], "SOLTEIRO");
    assert_eq!(full["renda"], json!(150.5));
    assert_eq!(full["conjuge"]["cpf"], "81227381417");
    assert_eq!(full["pep"]["cpf"], "41827755970");
    assert_eq!(full["estrangeiro"]["paisOrigem"], "Canadá");
    assert_eq!(full["idProfissao"], 1);
    assert_eq!(full["inibirEnvioFaturaGrafica"], false);
    assert_eq!(full["rg"], "3040312");
    assert_eq!(full["dataEmissaoRG"], "2002-05-16");
    assert_eq!(full["unidadeFederativaRG"], "PB");
    assert_eq!(full["clienteDataNascimento"], "1992-10-25");
    assert_eq!(full["enderecoResidencial"]["tempoMoradiaAnos"], 3);
    assert_eq!(full["enderecoComercial"]["cnpj"], "22130511000160");
    let r = c.call(
        "GET",
        &format!("{BASE}/nomes?nome=joao%20da%20silva"),
        &Value::Null,
    );
    assert_eq!(r.json["itens"][0]["id"], id);

    // Item 5: every limit reaches the views.
    let r = c.call(
        "PATCH",
        &format!("{BASE}/{id}/limites"),
        &json!({"limiteRotativo": "2500.50", "limiteParcelado": 1200, "limiteSaque": 300}),
    );
    r.expect(200);
    let ext = &get(&c, &format!("{BASE}/{id}/informacoes"))["extratoClienteResponse"];
    assert_eq!(ext["limite"], json!(2500.5));
    assert_eq!(ext["limiteParcelado"], json!(1200.0));
    assert_eq!(ext["saldoParceladoDisp"], json!(1200.0));
    assert_eq!(ext["limiteSaque"], json!(300.0));
    let r = c.call(
        "PATCH",
        &format!("{BASE}/{id}/limites"),
        &json!({"limiteSaque": 9000}),
    );
    problem(&r, 422, "invalid_field");
    assert_eq!(r.json["field"], "limiteSaque");
    let hist = get(&c, &format!("{BASE}/{id}/limites/historico"));
    let kinds: Vec<&str> = hist
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["limite"].as_str())
        .collect();
    for k in ["limiteRotativo", "limiteParcelado", "limiteSaque"] {
        assert!(kinds.contains(&k), "{k} missing in {kinds:?}");
    }

    // Item 6: the cycle.
    let ciclo = get(&c, &format!("{BASE}/{id}/ciclo"));
    for k in [
        "id",
        "diaCorte",
        "diaVencimento",
        "descricao",
        "ativo",
        "corteUltimoDiaMes",
        "diasCarencia",
        "descricaoContaBancariaCicloAtual",
        "descricaoContaBancariaProximoCiclo",
        "melhorDiaCompra",
    ] {
        assert!(!ciclo[k].is_null(), "{k} missing: {ciclo}");
    }
    assert_eq!(ciclo["diaVencimento"], 10);
    // Due on the 10th: the cut is the last day of the month and the best day the 1st.
    assert_eq!(ciclo["corteUltimoDiaMes"], "S");
    assert_eq!(ciclo["melhorDiaCompra"], 1);
    let corte = ciclo["dataFechamentoProxFatura"].as_str().unwrap();
    let next = cofre::api::domain::Date::parse(corte).unwrap().plus_days(1);
    assert_eq!(next.day(), 1, "the cut {corte} is a month's last day");

    // PJ with the 2026 alphanumeric CNPJ.
    let pj = json!({"razaoSocial": "Padaria São João Ltda", "nomeFantasia": "Padaria São João",
        "cnpj": "12.ABC.345/01DE-35", "dataAbertura": "2010-03-01", "idLoja": 15, "limiteRotativo": 5000,
        "endereco": {"cep": "58070-000", "uf": "PB", "logradouro": "Rua A", "numero": "1", "bairro": "Centro", "cidade": "João Pessoa"},
        "telefones": [{"tipo": "COMERCIAL", "area": "83", "telefone": "32221111"}]});
    let r = c.call("POST", &format!("{BASE}/contas/pj"), &pj);
    r.expect(201);
    assert_eq!(r.json["nomeCartao"], "PADARIA SAO JOAO");
    let pj_id = r.json["idPortador"].as_i64().unwrap();
    let v = get(&c, &format!("{BASE}/cnpj?cnpj=12ABC34501DE35"));
    assert_eq!(v[0]["idPortador"], pj_id);
    let v = get(&c, &format!("{BASE}/{pj_id}"));
    assert_eq!(v["cnpj"], "12ABC34501DE35");
    assert_eq!(v["enderecoResidencial"]["cep"], "58070000");

    // Lookups.
    let v = get(&c, &format!("{BASE}/rg?rg=3040312"));
    assert_eq!(v[0]["idPortador"], id);
    problem(
        &c.call(
            "GET",
            &format!("{BASE}/nomes?nome=a&limite=1"),
            &Value::Null,
        ),
        422,
        "invalid_field",
    );
    let page1 = get(&c, &format!("{BASE}/nomes?nome=da&limite=1"));
    let cursor = page1["proximoCursor"].as_str().unwrap().to_owned();
    let page2 = get(
        &c,
        &format!("{BASE}/nomes?nome=da&limite=1&cursor={cursor}"),
    );
    assert_ne!(page1["itens"][0]["id"], page2["itens"][0]["id"]);
    let v = get(&c, &format!("{BASE}/lote?ids={id},{pj_id},1"));
    assert_eq!(v["itens"].as_array().unwrap().len(), 2);
    assert_eq!(v["naoEncontrados"], json!([1]));
    let r = c.call(
        "PATCH",
        &format!("{BASE}/produto"),
        &json!({"idPortador": id, "idProduto": 3}),
    );
    r.expect(200);
    assert_eq!(r.json["produto"], "platinum");

    // Two tenants: the other store sees and changes nothing, and may have the same CPF.
    for (m, path, body) in [
        ("GET", format!("{BASE}/{id}"), Value::Null),
        ("GET", format!("{BASE}/{id}/informacoes"), Value::Null),
        ("GET", format!("{BASE}/{dep_id}"), Value::Null),
        (
            "PATCH",
            format!("{BASE}/{id}"),
            json!({"nomeSocial": "Outra"}),
        ),
        (
            "PATCH",
            format!("{BASE}/{id}/limites"),
            json!({"limiteRotativo": 1}),
        ),
        (
            "PATCH",
            format!("{BASE}/produto"),
            json!({"idPortador": id, "idProduto": 1}),
        ),
        (
            "GET",
            format!("{BASE}/simplificado/cpf?cpf={holder_cpf}"),
            Value::Null,
        ),
        (
            "GET",
            format!("{BASE}/completo/cpf?cpf={holder_cpf}"),
            Value::Null,
        ),
        (
            "GET",
            format!("{BASE}/dependentes/cpf?cpf={holder_cpf}"),
            Value::Null,
        ),
    ] {
        let r = other.call(m, &path, &body);
        problem(&r, 404, "portador_not_found");
    }
    assert_eq!(
        other
            .call(
                "GET",
                &format!("{BASE}/contas?cpf={holder_cpf}"),
                &Value::Null
            )
            .json,
        json!([])
    );
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
    let mut wrong_store = pf_example(&cpf());
    wrong_store["idLoja"] = json!(16);
    problem(
        &c.call("POST", &format!("{BASE}/contas/pf"), &wrong_store),
        403,
        "loja_mismatch",
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

// The English detector of `problem` and the vocabulary check catch what they look for
// (their positive controls).
#[test]
fn checks_catch_their_controls() {
    // The vocabulary check catches an internal word, another mask and a snake_case key.
    for bad in [
        json!({"statusCartao": "active"}),
        json!({"cartaoMascarado": "411111******1111"}),
        json!([{"account_id": 1}]),
    ] {
        assert!(std::panic::catch_unwind(|| one_vocabulary("control", &bad)).is_err());
    }
    one_vocabulary(
        "control",
        &json!({"statusCartao": "ATIVO", "cartaoMascarado": "411111XXXXXX1111"}),
    );
    let caught = std::panic::catch_unwind(|| {
        api_portadores_common::assert_english_free(&json!("the card is not active"))
    });
    assert!(caught.is_err());
    api_portadores_common::assert_english_free(&json!("O cartão não está em uso."));
}
