//! Account opening: `POST /api/v1/portadores/contas/pf` (individual, CPF) and
//! `/contas/pf` (company, CNPJ). One call creates the portador (a customer record of
//! the caller's tenant, its fields stored under the document's names), its account,
//! its card, and — PF — its `adicionais` (dependents with their cards), `telefones`
//! and `referencias`. Cards are issued through the daemon exactly as in the processor
//! flow (random PAN never issued before, token, random PIN with its PVV), before the
//! transaction; the records then commit together with the call's answer.
//!
//! Choices where the document is silent:
//! * `idLoja`, when present, must be the caller's tenant (`403 loja_mismatch`): the
//!   tenant is the store id, fixed by the API client that signs the call.
//! * `idProduto` 0 (or absent) is the first configured product; `n` is the product with
//!   logo `n` (unknown: 422 naming `idProduto`).
//! * `diaVencimento` (1-28) is the invoice due day, default 10; `limiteRotativo` the
//!   credit limit in reais (exact, at most 2 decimals, 0 to 100,000,000.00).
//! * PF: `nome`, `cpf`, `dataNascimento` (18 to 120 years) and a complete
//!   `enderecoResidencial` (where the card is mailed) are required; the rules of every
//!   field are in `pessoa` and `contato`. At most 10 `telefones`, 5 `referencias`,
//!   [`super::dependentes::MAX_DEPENDENTS`] `adicionais`.
//! * One portador per document per tenant (`409 portador_exists`).
//! * Answer (201): the document's fields — `contaCartao` the account number,
//!   `cartaoMascarado` (first 6, `X`, last 4), `numeroManual` `CA-<account>=`,
//!   `nomeCartao` the embossed name (see [`crate::api::domain::emboss`]),
//!   `diaVencimento`, `dataValidade` (the first day of the expiry month) — and
//!   `idPortador`, `idCartao`, the `adicionais` made and the `telefones` with their ids.

use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::abertura::open;
use super::adicionais::{Adicional, AdicionalReq, check_adicionais};
use super::cadastro_pj::conta_pj;
use super::contato::{TelefoneReq, check_phone, check_phones};
use super::dependentes::MAX_DEPENDENTS;
use super::input::{self, Checks, Field, IdText, Text};
use super::pessoa::{PessoaReq, RefData, check_cpf, check_kinship, check_money, check_person};
use super::referencias::{operation, problem, ref_data, route};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::config::Product;
use crate::api::domain::Money;
use crate::api::domain::emboss::embossed_name;
use crate::api::issuing::today_date;
use crate::api::store::Reference;
use crate::handler;

/// A titular's minimum age.
pub const TITULAR_MIN_AGE: i32 = 18;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/api/v1/portadores/contas/pf",
            doc_pf,
            handler!(conta_pf),
        ),
        route(
            Method::POST,
            "/api/v1/portadores/contas/pj",
            doc_pj,
            handler!(conta_pj),
        ),
    ]
}

fn answer_schema() -> Value {
    json!({"type": "object", "required": ["contaCartao", "cartaoMascarado", "numeroManual", "nomeCartao", "diaVencimento", "dataValidade"],
    "properties": {
        "idPortador": {"type": "integer"}, "contaCartao": {"type": "integer"}, "idCartao": {"type": "integer"},
        "cartaoMascarado": {"type": "string"}, "numeroManual": {"type": "string"},
        "nomeCartao": {"type": "string"}, "diaVencimento": {"type": "integer"},
        "dataValidade": {"type": "string", "format": "date"},
        "adicionais": {"type": "array", "items": {"type": "object"}},
        "telefones": {"type": "array", "items": {"type": "object"}}
    }})
}

/// Adds the `403 loja_mismatch` an opening answers when `idLoja` is another store's.
fn other_store_forbidden(mut op: Value) -> Value {
    let mut forbidden = problem();
    forbidden["description"] = json!("idLoja não é a loja do cliente da API (loja_mismatch)");
    op["responses"]["403"] = forbidden;
    op
}

fn doc_pf() -> Value {
    other_store_forbidden(operation(
        "Cadastra uma conta para Pessoa Física",
        &[],
        Some(
            json!({"type": "object", "required": ["nome", "cpf", "dataNascimento", "enderecoResidencial"], "properties": {
                "nome": {"type": "string", "maxLength": 120}, "cpf": {"type": "string"},
                "dataNascimento": {"type": "string", "format": "date"}, "rg": {"type": "string"},
                "orgaoEmissor": {"type": "string"}, "renda": {"type": "number"}, "sexo": {"type": "string"},
                "nomeMae": {"type": "string"}, "idProfissao": {"type": "integer"}, "email": {"type": "string"},
                "enderecoResidencial": {"type": "object"}, "enderecoComercial": {"type": "object"},
                "enderecoAlternativo": {"type": "object"},
                "adicionais": {"type": "array", "maxItems": MAX_DEPENDENTS, "items": {"type": "object"}},
                "referencias": {"type": "array", "maxItems": 5, "items": {"type": "object"}},
                "idLoja": {"type": "integer"}, "limiteRotativo": {"type": "number"},
                "ocupacao": {"type": "string"}, "nacionalidade": {"type": "string"},
                "telefones": {"type": "array", "maxItems": 10, "items": {"type": "object"}},
                "idProduto": {"type": "integer"}, "diaVencimento": {"type": "integer", "minimum": 1, "maximum": 28}
            }}),
        ),
        ("201", answer_schema()),
    ))
}

fn doc_pj() -> Value {
    other_store_forbidden(operation(
        "Cadastra uma conta para Pessoa Jurídica",
        &[],
        Some(
            json!({"type": "object", "required": ["razaoSocial", "cnpj", "endereco"], "properties": {
                "razaoSocial": {"type": "string", "maxLength": 150}, "nomeFantasia": {"type": "string"},
                "cnpj": {"type": "string", "description": "14 caracteres, numérico ou alfanumérico (2026)"},
                "dataAbertura": {"type": "string", "format": "date"}, "inscricaoEstadual": {"type": "string"},
                "email": {"type": "string"}, "endereco": {"type": "object"},
                "telefones": {"type": "array", "maxItems": 10, "items": {"type": "object"}},
                "idLoja": {"type": "integer"}, "limiteRotativo": {"type": "number"},
                "idProduto": {"type": "integer"}, "diaVencimento": {"type": "integer", "minimum": 1, "maximum": 28},
                "nomeCartao": {"type": "string", "maxLength": 26}
            }}),
        ),
        ("201", answer_schema()),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Opening {
    #[serde(default)]
    pub(super) id_loja: Field<IdText>,
    #[serde(default)]
    pub(super) limite_rotativo: Field<Value>,
    #[serde(default)]
    pub(super) id_produto: Field<i64>,
    #[serde(default)]
    pub(super) dia_vencimento: Field<i64>,
    #[serde(default)]
    pub(super) telefones: Field<Vec<Field<TelefoneReq>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContaPf {
    #[serde(default)]
    cpf: Field<String>,
    #[serde(default)]
    adicionais: Field<Vec<Field<AdicionalReq>>>,
    #[serde(default)]
    referencias: Field<Vec<Field<ReferenciaReq>>>,
    #[serde(flatten)]
    abertura: Opening,
    #[serde(flatten)]
    pessoa: PessoaReq,
    #[serde(flatten)]
    outros: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferenciaReq {
    #[serde(default)]
    nome: Field<String>,
    #[serde(default)]
    grau_parentesco: Field<IdText>,
    #[serde(default)]
    telefone: Field<TelefoneReq>,
}

/// What both openings check alike.
pub(super) struct Terms {
    pub(super) limit: Money,
    pub(super) due: i64,
    pub(super) product: Product,
}

pub(super) fn check_terms(chk: &mut Checks, ctx: &Ctx, o: &Opening) -> Option<Terms> {
    if let Some(loja) = chk.id("idLoja", &o.id_loja, false)
        && loja.to_string() != ctx.tenant.as_str()
    {
        // Refused at once: another store's id is not a field error but a wrong caller.
        chk.fail(
            "idLoja",
            "loja_mismatch",
            "idLoja não é a loja do cliente da API",
        );
    }
    let limit = if o.limite_rotativo.is_given() {
        check_money(chk, "limiteRotativo", &o.limite_rotativo)
    } else {
        Some(Money::ZERO)
    };
    let due = chk
        .integer("diaVencimento", &o.dia_vencimento, false, 1..=28)
        .unwrap_or(10);
    let id = chk
        .integer("idProduto", &o.id_produto, false, 0..=i64::from(u32::MAX))
        .unwrap_or(0);
    let products = &ctx.app.config.products;
    let product = if id == 0 {
        products.first()
    } else {
        products.iter().find(|p| p.logo == id)
    };
    if product.is_none() {
        chk.fail("idProduto", "unknown_product", "nenhum produto com este id");
    }
    Some(Terms {
        limit: limit?,
        due,
        product: product?.clone(),
    })
}

/// The parts of a new portador, checked.
pub(super) struct NewPortador {
    pub(super) tipo: &'static str,
    pub(super) documento: String,
    pub(super) rg: String,
    pub(super) nome: String,
    pub(super) nome_cartao: String,
    pub(super) body: Value,
    pub(super) terms: Terms,
    pub(super) phones: Vec<super::contato::Telefone>,
    pub(super) references: Vec<Reference>,
    pub(super) adicionais: Vec<Adicional>,
}

async fn reference_data(ctx: &Ctx) -> Result<RefData, ApiError> {
    let mut reader = ctx.reader().await?;
    ref_data(&mut reader.records()).await
}

pub(super) fn mismatch_first(chk: Checks) -> Result<(), ApiError> {
    chk.finish().map_err(|e| {
        if e.invalid.iter().any(|p| p.code == "loja_mismatch") {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "loja_mismatch",
                "idLoja não é a loja do cliente da API.",
            )
            .field("idLoja")
        } else {
            e
        }
    })
}

async fn conta_pf(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: ContaPf = input::body(&ctx.body, "um objeto")?;
    let refs = reference_data(&ctx).await?;
    let today = today_date();
    let mut chk = Checks::new();
    let terms = check_terms(&mut chk, &ctx, &req.abertura);
    let cpf = check_cpf(&mut chk, "cpf", &req.cpf, true);
    let mut body = check_person(&mut chk, &req.pessoa, &refs, today, true, TITULAR_MIN_AGE);
    let phones = check_phones(&mut chk, "telefones", &req.abertura.telefones, 10);
    let references = check_references(&mut chk, &req.referencias, &refs);
    let adicionais = match &req.adicionais {
        Field::Value(list) if list.len() > MAX_DEPENDENTS => {
            chk.fail(
                "adicionais",
                "too_many",
                format!("no máximo {MAX_DEPENDENTS} adicionais"),
            );
            Vec::new()
        }
        Field::Value(list) => check_adicionais(
            &mut chk,
            "adicionais",
            list,
            &refs,
            today,
            cpf.as_ref().map(|c| c.as_str()),
        ),
        Field::WrongType => {
            chk.wrong_type("adicionais", "uma lista");
            Vec::new()
        }
        _ => Vec::new(),
    };
    mismatch_first(chk)?;
    let (Some(terms), Some(cpf)) = (terms, cpf) else {
        return Err(ApiError::internal("a checked opening lost a field"));
    };
    let nome = body
        .get("nome")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let rg = body
        .get("rg")
        .and_then(|r| r.get("rg"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    body.insert("tipoPessoa".into(), json!("PF"));
    body.insert("cpf".into(), json!(cpf.as_str()));
    input::keep_others(&mut body, &req.outros);
    open(
        &ctx,
        NewPortador {
            tipo: "PF",
            documento: cpf.as_str().to_owned(),
            rg,
            nome_cartao: embossed_name(&nome),
            nome,
            body: Value::Object(body),
            terms,
            phones,
            references,
            adicionais,
        },
    )
    .await
}

fn check_references(
    chk: &mut Checks,
    f: &Field<Vec<Field<ReferenciaReq>>>,
    refs: &RefData,
) -> Vec<Reference> {
    let list = match f {
        Field::Value(l) => l,
        Field::WrongType => {
            chk.wrong_type("referencias", "uma lista");
            return Vec::new();
        }
        _ => return Vec::new(),
    };
    if list.len() > 5 {
        chk.fail("referencias", "too_many", "no máximo 5 referências");
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let at = |k: &str| format!("referencias[{i}].{k}");
        let Field::Value(r) = f else {
            chk.wrong_type(&format!("referencias[{i}]"), "um objeto");
            continue;
        };
        let nome = chk.text(&at("nome"), &r.nome, true, Text::name(120));
        let grau = check_kinship(chk, &at("grauParentesco"), &r.grau_parentesco, refs);
        let phone = check_phone(chk, &at("telefone"), &r.telefone, true);
        if let (Some(name), Some(grau), Some(t)) = (nome, grau, phone) {
            out.push(Reference {
                id: 0,
                name,
                kinship: grau.id,
                phone_kind: t.tipo.to_owned(),
                area: t.numero.area(),
                number: t.numero.number().to_owned(),
                extension: t.ramal,
            });
        }
    }
    out
}
