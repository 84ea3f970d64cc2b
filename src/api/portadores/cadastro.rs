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

use super::common::document_key;
use super::contato::{EnderecoReq, Kind, TelefoneReq, check_address, check_phone, check_phones};
use super::dependentes::{AdicionalReq, MAX_DEPENDENTS, check_adicionais, create_dependents};
use super::input::{self, Checks, Field, IdText, Text};
use super::pessoa::{
    PessoaReq, RefData, check_cpf, check_kinship, check_money, check_past_date, check_person,
};
use super::referencias::{operation, ref_data, route};
use super::telefones::store_phone;
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::config::Product;
use crate::api::domain::br::{self, Cnpj};
use crate::api::domain::emboss::embossed_name;
use crate::api::domain::{CardKind, CardStatus, Money};
use crate::api::issuing::{Issued, expiry_in, issue, product_code, today_date};
use crate::api::store::{Account, Body, NewCard, Records, Reference, StoreError, new_id};
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

fn doc_pf() -> Value {
    operation(
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
    )
}

fn doc_pj() -> Value {
    operation(
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
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Opening {
    #[serde(default)]
    id_loja: Field<IdText>,
    #[serde(default)]
    limite_rotativo: Field<Value>,
    #[serde(default)]
    id_produto: Field<i64>,
    #[serde(default)]
    dia_vencimento: Field<i64>,
    #[serde(default)]
    telefones: Field<Vec<Field<TelefoneReq>>>,
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContaPj {
    #[serde(default)]
    razao_social: Field<String>,
    #[serde(default)]
    nome_fantasia: Field<String>,
    #[serde(default)]
    cnpj: Field<String>,
    #[serde(default)]
    data_abertura: Field<String>,
    #[serde(default)]
    inscricao_estadual: Field<String>,
    #[serde(default)]
    email: Field<String>,
    #[serde(default)]
    endereco: Field<EnderecoReq>,
    #[serde(default)]
    nome_cartao: Field<String>,
    #[serde(flatten)]
    abertura: Opening,
    #[serde(flatten)]
    outros: Map<String, Value>,
}

/// What both openings check alike.
struct Terms {
    limit: Money,
    due: i64,
    product: Product,
}

fn check_terms(chk: &mut Checks, ctx: &Ctx, o: &Opening) -> Option<Terms> {
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
struct NewPortador {
    tipo: &'static str,
    documento: String,
    rg: String,
    nome: String,
    nome_cartao: String,
    body: Value,
    terms: Terms,
    phones: Vec<super::contato::Telefone>,
    references: Vec<Reference>,
    adicionais: Vec<super::dependentes::Adicional>,
}

async fn reference_data(ctx: &Ctx) -> Result<RefData, ApiError> {
    let mut reader = ctx.reader().await?;
    ref_data(&mut reader.records()).await
}

fn mismatch_first(chk: Checks) -> Result<(), ApiError> {
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

async fn conta_pj(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: ContaPj = input::body(&ctx.body, "um objeto")?;
    let today = today_date();
    let mut chk = Checks::new();
    let terms = check_terms(&mut chk, &ctx, &req.abertura);
    let razao = chk.text("razaoSocial", &req.razao_social, true, Text::printable(150));
    let fantasia = chk.text(
        "nomeFantasia",
        &req.nome_fantasia,
        false,
        Text::printable(150),
    );
    let cnpj = match chk.text("cnpj", &req.cnpj, true, Text::printable(18)) {
        Some(c) => Cnpj::parse(&c)
            .map_err(|_| {
                chk.fail(
                    "cnpj",
                    "check_digits",
                    "CNPJ com dígitos verificadores inválidos",
                )
            })
            .ok(),
        None => None,
    };
    let opened = check_past_date(&mut chk, "dataAbertura", &req.data_abertura, false, today);
    let ie = chk.text(
        "inscricaoEstadual",
        &req.inscricao_estadual,
        false,
        Text {
            min: 2,
            max: 14,
            chars: input::Chars::Alphanumeric,
        },
    );
    let email = chk
        .text("email", &req.email, false, Text::printable(254))
        .and_then(|e| {
            crate::api::domain::contact::email(&e)
                .map_err(|_| chk.fail("email", "invalid_email", "um e-mail nome@dominio.tld"))
                .ok()
        });
    let address = check_address(&mut chk, "endereco", &req.endereco, Kind::Residencial, true);
    let shown = chk.text("nomeCartao", &req.nome_cartao, false, Text::printable(26));
    let phones = check_phones(&mut chk, "telefones", &req.abertura.telefones, 10);
    mismatch_first(chk)?;
    let (Some(terms), Some(razao), Some(cnpj)) = (terms, razao, cnpj) else {
        return Err(ApiError::internal("a checked opening lost a field"));
    };
    let mut body = Map::new();
    body.insert("tipoPessoa".into(), json!("PJ"));
    body.insert("razaoSocial".into(), json!(razao));
    body.insert("nome".into(), json!(razao));
    body.insert("cnpj".into(), json!(cnpj.as_str()));
    for (k, v) in [
        ("nomeFantasia", fantasia.clone()),
        ("dataAbertura", opened.map(|d| d.to_string())),
        ("inscricaoEstadual", ie),
        ("email", email),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    }
    if let Some(a) = address {
        body.insert("enderecoResidencial".into(), Value::Object(a));
    }
    input::keep_others(&mut body, &req.outros);
    let card_name = embossed_name(shown.as_deref().or(fantasia.as_deref()).unwrap_or(&razao));
    open(
        &ctx,
        NewPortador {
            tipo: "PJ",
            documento: cnpj.as_str().to_owned(),
            rg: String::new(),
            nome: razao,
            nome_cartao: card_name,
            body: Value::Object(body),
            terms,
            phones,
            references: Vec::new(),
            adicionais: Vec::new(),
        },
    )
    .await
}

fn exists(field: &str) -> ApiError {
    ApiError::conflict(
        "portador_exists",
        "Já existe um portador com este documento nesta loja.",
    )
    .field(field)
}

async fn open(ctx: &Ctx, o: NewPortador) -> Result<Reply, ApiError> {
    let field = if o.tipo == "PF" { "cpf" } else { "cnpj" };
    {
        let mut reader = ctx.reader().await?;
        if !reader
            .records()
            .portadores_by_document(&o.documento)
            .await?
            .is_empty()
        {
            return Err(exists(field));
        }
    }
    // The daemon first, outside the transaction: nothing is recorded if a card cannot
    // be issued.
    let holder_card = issue(&ctx.app, &o.terms.product).await?;
    let mut dependent_cards: Vec<Issued> = Vec::with_capacity(o.adicionais.len());
    for _ in &o.adicionais {
        dependent_cards.push(issue(&ctx.app, &o.terms.product).await?);
    }
    let tenant = ctx.tenant.as_str().to_owned();
    let kinship = {
        let mut reader = ctx.reader().await?;
        reader.records().kinship_degrees().await?
    };
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            create(&mut r, &tenant, o, holder_card, dependent_cards, &kinship)
                .await
                .map_err(|e| match e.code {
                    "duplicate" => exists(field),
                    _ => e,
                })
        })
    })
    .await
}

async fn create(
    r: &mut Records<'_>,
    tenant: &str,
    o: NewPortador,
    card: Issued,
    dependent_cards: Vec<Issued>,
    kinship: &[crate::api::store::CodeRow],
) -> Result<Reply, ApiError> {
    if !r.portadores_by_document(&o.documento).await?.is_empty() {
        return Err(ApiError::from(StoreError::Conflict("document".into())));
    }
    let t = &o.terms;
    let customer = r
        .create_customer(
            new_id(),
            &document_key(o.tipo, &o.documento, tenant),
            &o.nome,
            &o.body,
        )
        .await?;
    r.index_portador(customer.id, o.tipo, &o.documento, &o.rg, &br::fold(&o.nome))
        .await?;
    let account = r
        .create_account(&Account {
            id: new_id(),
            customer_id: customer.id,
            product: product_code(&t.product),
            credit_limit: t.limit.minor(),
            cycle_day: t.due,
            body: Body(json!({"origem": "portadores", "tipoPessoa": o.tipo})),
            status: "active".into(),
            tenant: tenant.to_owned(),
        })
        .await?;
    if t.limit > Money::ZERO {
        r.record_limit_change(
            customer.id,
            account.id,
            "limiteRotativo",
            0,
            t.limit.minor(),
        )
        .await?;
    }
    let years = t.product.validity_years.unwrap_or(5);
    let service = t
        .product
        .service_code
        .clone()
        .unwrap_or_else(|| "201".into());
    let expiry = expiry_in(years);
    let holder_card = r
        .create_card(
            NewCard {
                account_id: account.id,
                customer_id: customer.id,
                token: card.token,
                token_version: card.token_version,
                lookup_token: card.lookup_token,
                masked_pan: card.masked_pan,
                kind: CardKind::PhysicalCredit,
                expiry: expiry.clone(),
                service_code: service.clone(),
                pvv: card.pvv,
                pin_blob: card.pin_blob,
                body: json!({"embossedName": o.nome_cartao, "origem": "portadores"}),
                credit_limit: 0,
            },
            CardStatus::Active,
            "create",
        )
        .await?;
    let mut phones = Vec::new();
    for t in &o.phones {
        phones.push(store_phone(r, customer.id, t).await?);
    }
    for reference in &o.references {
        r.add_reference(customer.id, reference).await?;
    }
    let adicionais = create_dependents(
        r,
        customer.id,
        &account,
        (years, &service),
        o.adicionais,
        dependent_cards,
        kinship,
    )
    .await?;
    Reply::created(json!({
        "idPortador": customer.id,
        "contaCartao": account.id,
        "idCartao": holder_card.id,
        "cartaoMascarado": super::common::mask(&holder_card),
        "numeroManual": format!("CA-{}=", account.id),
        "nomeCartao": o.nome_cartao,
        "diaVencimento": t.due,
        "dataValidade": format!("20{}-{}-01", &expiry[0..2], &expiry[2..4]),
        "adicionais": adicionais,
        "telefones": phones,
    }))
}
