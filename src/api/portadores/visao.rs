//! The views of a portador: the full view of the document (`GET /{idPortador}`,
//! `/informacoes`, `/completo/cpf`: all 49 fields of the document's example, plus the
//! fields `PATCH` accepts), the short view (`/simplificado/cpf`, `/nomes`, `/lote`),
//! the account list (`/contas`, `/rg`, `/cnpj`) and a dependent.
//!
//! Where cofre keeps no data (it is not a billing system) the view answers what is
//! true of an account without transactions: balances equal the limits, nothing owed
//! beyond open delinquencies, no closed invoice (`faturaFechada` null), no slips
//! (`boletos` []), no fees (`taxas` []), no loyalty programme
//! (`pontuacaoFidelidadeResponse` null), no brand transition
//! (`transicaoBandeira` "N", `produtoTransicaoBandeira` null), PINs that never
//! expire (`senhaExpirada` false). Status words are the same in every view (ATIVO,
//! INATIVO, BLOQUEADO, PERDIDO, ROUBADO, SUBSTITUIDO, CANCELADO) and card numbers are
//! masked the same way (first 6, `X`, last 4).

use serde_json::{Map, Value, json};

use super::ciclo::Ciclo;
use super::common::{
    Documento, Portador, Role, block_word, card_status_word, id_loja, mask, record_status_word,
    status_description,
};
use super::contato::{Kind, address_view};
use crate::api::config::Product;
use crate::api::domain::{BlockCode, BlockType, Date, Money};
use crate::api::issuing::card_number;
use crate::api::store::{Account, Card, CodeRow, Customer, Delinquency, Reference};

/// What the full view needs beside the portador.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// When the record was created.
    pub created: Option<Date>,
    /// A titular's dependents: their record and card.
    pub dependents: Vec<(Customer, Card)>,
    /// Delinquency periods.
    pub delinquencies: Vec<Delinquency>,
    /// Personal references.
    pub references: Vec<Reference>,
    /// The main card's failed PIN tries (the daemon's counter).
    pub pin_tries: Option<u32>,
    /// The account's configured product.
    pub product: Option<Product>,
    /// Kinship degrees.
    pub kinship: Vec<CodeRow>,
    /// Block types.
    pub block_types: Vec<CodeRow>,
}

fn money(minor: i64) -> Value {
    Money::from_minor(minor).to_json()
}

/// An amount kept in an account's body (`limiteParcelado`, `limiteSaque`), in minor units.
pub fn body_limit(account: &Account, key: &str) -> i64 {
    account
        .body
        .get(key)
        .and_then(|v| Money::from_json(v).ok())
        .map_or(0, Money::minor)
}

fn body_str<'a>(c: &'a Customer, key: &str) -> Option<&'a str> {
    c.body.get(key).and_then(Value::as_str)
}

/// The RG's parts: a record keeps `rg` as an object (or, stored before, a text).
fn rg_parts(c: &Customer) -> (Value, Value, Value, Value) {
    match c.body.get("rg") {
        Some(Value::Object(o)) => (
            o.get("rg").cloned().unwrap_or(Value::Null),
            o.get("dataEmissao").cloned().unwrap_or(Value::Null),
            o.get("orgaoEmissor")
                .or(c.body.get("orgaoEmissor"))
                .cloned()
                .unwrap_or(Value::Null),
            o.get("unidadeFederativa").cloned().unwrap_or(Value::Null),
        ),
        Some(Value::String(s)) => (
            json!(s),
            Value::Null,
            c.body.get("orgaoEmissor").cloned().unwrap_or(Value::Null),
            Value::Null,
        ),
        _ => (Value::Null, Value::Null, Value::Null, Value::Null),
    }
}

fn block_description(types: &[CodeRow], block: Option<BlockCode>) -> Value {
    match block {
        Some(BlockCode::Type(t)) => types
            .iter()
            .find(|r| r.code == t.as_str())
            .map_or(json!(t.as_str()), |r| json!(r.description)),
        Some(b) => json!(b.as_string()),
        None => Value::Null,
    }
}

/// The short view.
pub fn resumo(p: &Portador) -> Value {
    let c = &p.customer;
    let mut v = json!({
        "id": c.id,
        "nome": c.name,
        "nomeSocial": c.body.get("nomeSocial"),
        "idLoja": id_loja(&c.tenant),
        "tipoPessoa": match p.documento { Documento::Cnpj(_) => "PJ", _ => "PF" },
        "email": c.body.get("email"),
        "clienteDataNascimento": c.body.get("dataNascimento"),
        "rg": rg_parts(c).0,
        "statusCliente": record_status_word(&c.status),
        "descricaoStatusCliente": status_description(record_status_word(&c.status)),
        "idConta": p.main_account().map(|a| a.id),
    });
    match &p.documento {
        Documento::Cnpj(d) => v["cnpj"] = json!(d.as_str()),
        d => v["cpf"] = json!(d.as_str()),
    }
    if let Role::Adicional { holder } = p.role {
        v["idPortadorTitular"] = json!(holder);
    }
    match p.main_card() {
        Some(card) => {
            v["idCartao"] = json!(card.id);
            v["cartao"] = json!(card_number(card));
            v["numeroCartaoTruncado"] = json!(mask(card));
            v["statusCartao"] = json!(card_status_word(card.status));
        }
        None => {
            for k in ["idCartao", "cartao", "numeroCartaoTruncado", "statusCartao"] {
                v[k] = Value::Null;
            }
        }
    }
    v
}

/// A dependent as the holder's views list it (the document's `dependentes` items, and
/// the list of `GET /{idPortador}/dependentes`).
pub fn dependente(holder: i64, dep: &Customer, card: &Card, kinship: &[CodeRow]) -> Value {
    let b = &dep.body;
    let grau = b.get("grauParentesco").and_then(|g| match g {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => kinship
            .iter()
            .find(|k| k.code.eq_ignore_ascii_case(s))
            .map(|k| k.id),
        _ => None,
    });
    let status = match card.status.as_str() {
        "active" => "A",
        "blocked" => "B",
        "inactive" => "I",
        _ => "C",
    };
    json!({
        "id": dep.id,
        "idClienteTitularAssociado": holder,
        "nome": dep.name,
        "nomeSocial": b.get("nomeSocial"),
        "cpf": super::common::documento_of(dep).as_str(),
        "dataNascimento": b.get("dataNascimento"),
        "nascimento": b.get("dataNascimento"),
        "sexo": b.get("sexo"),
        "idGrauParentesco": grau,
        "grauParentesco": grau,
        "nomeMae": b.get("nomeMae"),
        "nomePersonalizado": b.get("nomePersonalizado"),
        "persisted": true,
        "status": status,
        "idCartao": card.id,
        "cartaoMascarado": mask(card),
        "statusCartao": card_status_word(card.status),
    })
}

/// The accounts of a portador as the account lists show them.
pub fn contas(p: &Portador, product_name: impl Fn(&Account) -> Option<String>) -> Vec<Value> {
    p.accounts
        .iter()
        .map(|a| {
            let card = p
                .cards
                .iter()
                .rev()
                .find(|c| c.account_id == a.id && !c.status.is_final())
                .or_else(|| p.cards.iter().rev().find(|c| c.account_id == a.id));
            json!({
                "idConta": a.id, "idPortador": p.customer.id, "nome": p.customer.name,
                "idCartao": card.map(|c| c.id),
                "cartaoMascarado": card.map(mask),
                "statusConta": record_status_word(&a.status),
                "statusCartao": card.map(|c| card_status_word(c.status)),
                "produto": product_name(a).unwrap_or_else(|| a.product.clone()),
                "limiteRotativo": money(a.credit_limit),
                "idLoja": id_loja(&a.tenant),
            })
        })
        .collect()
}

/// The full view (see the module documentation).
pub fn completo(p: &Portador, x: &Extras, today: Date) -> Value {
    let c = &p.customer;
    let mut v = resumo(p);
    let account = p.main_account();
    let card = p.main_card();
    let (rg, rg_date, rg_org, rg_uf) = rg_parts(c);
    v["rg"] = rg;
    v["dataEmissaoRG"] = rg_date;
    v["orgaoEmissorRG"] = rg_org;
    v["unidadeFederativaRG"] = rg_uf;
    v["rendas"] = match c.body.get("renda") {
        Some(r) => {
            let valor = r.get("valor").unwrap_or(r);
            let proven = r
                .get("comprovada")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            json!([{"id": r.get("id").and_then(Value::as_i64).unwrap_or(1), "valor": valor,
                "comprovada": if proven { "S" } else { "N" }, "idPessoa": c.id,
                "principal": "S", "origem": "CADASTRO"}])
        }
        None => json!([]),
    };
    v["statusAnalise"] = json!("APROVADO");
    v["contratoImpresso"] = json!("N");
    let open: Vec<&Delinquency> = x
        .delinquencies
        .iter()
        .filter(|d| d.ended_ms.is_none())
        .collect();
    v["estanoCobranca"] = json!(if open.is_empty() { "N" } else { "S" });
    v["estaEmAtraso"] = json!(!open.is_empty());
    v["diasAtrasoTotal"] = json!(open.iter().map(|d| d.days_late).max().unwrap_or(0));
    v["diasProvisionamento"] = json!(0);
    let owed: i64 = open.iter().map(|d| d.amount).sum();
    let all_cards: Vec<&Card> = p
        .cards
        .iter()
        .chain(p.dependents.iter().map(|(_, c)| c))
        .collect();
    let last_block = p.cards.iter().rev().find_map(|c| c.block_code);
    v["ultimoMotivoBloqueioCliente"] = block_description(&x.block_types, last_block);
    let judicial = all_cards
        .iter()
        .any(|c| c.block_code == Some(BlockCode::Type(BlockType::BloqueioJudicial)));
    let limit = account.map_or(0, |a| a.credit_limit);
    let installments = account.map_or(0, |a| body_limit(a, "limiteParcelado"));
    let cash = account.map_or(0, |a| body_limit(a, "limiteSaque"));
    v["extratoClienteResponse"] = json!({
        "limite": money(limit), "saldoDisponivel": money((limit - owed).max(0)),
        "saldoReservado": 0, "saldoParceladoDisp": money(installments), "limiteParcelado": money(installments),
        "limiteSaque": money(cash), "saldoSaqueDisponivel": money(cash),
        "devedorTotal": money(owed), "utilizaLimiteExtra": false, "valorLimiteExtra": 0,
        "limiteExtraTotal": 0, "saldoDisponivelExtra": 0, "valorFaturaFechada": 0,
        "clienteEmBloqueioJuridico": judicial,
    });
    v["valorLancamentosFuturos"] = json!(0);
    v["pontuacaoFidelidadeResponse"] = Value::Null;
    let digital = c
        .body
        .get("inibirEnvioFaturaGrafica")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    v["inibirEnvioFaturaGrafica"] = json!(digital);
    v["statusFaturaDigital"] = json!(if digital { "ATIVA" } else { "INATIVA" });
    v["boletos"] = json!([]);
    v["faturaFechada"] = Value::Null;
    v["taxas"] = json!([]);
    let ciclo = account.map(|a| Ciclo::of(a.cycle_day, today));
    v["ciclo"] = match (&ciclo, account) {
        (Some(cy), Some(a)) => cy.json(a.id),
        _ => Value::Null,
    };
    v["melhorDiaCompra"] = json!(ciclo.as_ref().map(Ciclo::best_purchase_day));
    v["dataFechamentoProxFatura"] = json!(ciclo.as_ref().map(|c| c.next_close.to_string()));
    v["faturaFutura"] = match &ciclo {
        Some(cy) => json!({"dataVencimento": cy.next_due.to_string(), "valorTotal": 0}),
        None => Value::Null,
    };
    v["senhaExpirada"] = json!(false);
    v["dependentes"] = json!(
        x.dependents
            .iter()
            .map(|(d, card)| dependente(c.id, d, card, &x.kinship))
            .collect::<Vec<_>>()
    );
    v["produto"] = match &x.product {
        Some(prod) => json!({
            "id": prod.logo, "descricao": prod.name.clone().unwrap_or_default(),
            "isProdutoDigital": "N", "isProdutoBandeirado": "S",
            "encargos": {"cobrarMulta": false, "multa": 0, "regraCalculoMulta": "", "ignorarMultaAnterior": false,
                "ignorarSaldoRolado": false, "mora": 0, "regraCalculoMora": "", "jurosRotativo": 0,
                "realizarEstornoJurosPagamento": false},
            "limiteExtra": {"percentualPadrao": 0, "valorPadrao": 0, "habilitarClientesNovos": false},
            "overlimit": {"percentualSobreUso": 0, "permitePercentualSobreUso": false, "taxaSobreUso": 0,
                "permiteTaxaSobreUso": false, "permiteRepetirMesmoCiclo": false}
        }),
        None => Value::Null,
    };
    v["dataCadastro"] = json!(x.created.map(|d| d.to_string()));
    v["estaEmPerda"] = json!(card.is_some_and(|c| matches!(c.status.as_str(), "lost" | "stolen")));
    v["numeroCartaoCriptografado"] = json!(card.map(card_number));
    v["permiteAcessoApp"] =
        json!(c.status == "active" && card.is_some_and(|c| !c.status.is_final()));
    v["totalTentativasValidacaoCartao"] = json!(x.pin_tries.unwrap_or(0));
    v["enderecoResidencial"] = address_view(
        c.body
            .get("enderecoResidencial")
            .or(c.body.get("endereco"))
            .unwrap_or(&Value::Null),
        Kind::Residencial,
    );
    v["enderecoComercial"] = address_view(
        c.body.get("enderecoComercial").unwrap_or(&Value::Null),
        Kind::Comercial,
    );
    v["enderecoAlternativo"] = address_view(
        c.body.get("enderecoAlternativo").unwrap_or(&Value::Null),
        Kind::Alternativo,
    );
    v["transicaoBandeira"] = json!("N");
    v["utilizaOverLimitPersonalizado"] = json!(false);
    v["produtoTransicaoBandeira"] = Value::Null;
    v["codigoBloqueioCartao"] = json!(card.map(|c| block_word(c.block_code)));
    // The fields PATCH accepts, as stored.
    let mut more = Map::new();
    for k in [
        "nacionalidade",
        "cidadeNatal",
        "estadoNatal",
        "sexo",
        "nomePai",
        "nomeMae",
        "estadoCivil",
        "conjuge",
        "pep",
        "estrangeiro",
        "idProfissao",
        "idMoradia",
        "idEscolaridade",
        "idOcupacao",
        "ocupacao",
        "dataAdmissaoProfissao",
        "quantidadeAnosProfissao",
        "portadorNecessidadesVisuais",
        "razaoSocial",
        "nomeFantasia",
        "dataAbertura",
        "inscricaoEstadual",
    ] {
        more.insert(k.into(), c.body.get(k).cloned().unwrap_or(Value::Null));
    }
    more.insert(
        "renda".into(),
        c.body
            .get("renda")
            .and_then(|r| r.get("valor").or(Some(r)))
            .cloned()
            .unwrap_or(Value::Null),
    );
    more.insert("diaVencimento".into(), json!(account.map(|a| a.cycle_day)));
    more.insert(
        "referencias".into(),
        json!(x.references.iter().map(|r| json!({"nome": r.name, "grauParentesco": r.kinship,
            "telefone": {"tipo": r.phone_kind, "area": r.area, "telefone": r.number, "ramal": r.extension}})).collect::<Vec<_>>()),
    );
    if let Some(o) = v.as_object_mut() {
        for (k, val) in more {
            o.entry(k).or_insert(val);
        }
    }
    if body_str(c, "tipoPessoa") == Some("PJ") {
        v["razaoSocial"] = json!(c.name);
    }
    v
}
