//! Account opening: `POST /api/v1/portadores/contas/pf` (individual, CPF) and
//! `/contas/pj` (company, CNPJ). One call creates the portador (a customer record of the
//! caller's tenant, the whole request kept in its body), its account and its card; the
//! card is issued through the daemon exactly as in the processor flow (random PAN never
//! issued before, token, random PIN with its PVV) and delivered **active**.
//!
//! Choices where the document is silent:
//! * `idLoja`, when present, must be the caller's tenant (`403 loja_mismatch`): the
//!   tenant is the store id, fixed by the API client that signs the call.
//! * `idProduto` 0 (or absent) is the first configured product; `n` is the product with
//!   logo `n` (unknown: 422 naming `idProduto`).
//! * `diaVencimento` (1-28) is the invoice due day, default 10; `limiteRotativo` the
//!   credit limit in reais (exact decimal, at most 2 places, 0 to 100,000,000.00).
//! * One portador per document per tenant (`409 portador_exists`).
//! * `adicionais` and `referencias` are validated and kept in the record; additional
//!   cards are issued with `POST /{idPortador}/dependentes`.
//! * Answer: `contaCartao` the account number, `cartaoMascarado` the PAN's first 6 and
//!   last 4 with `X` between, `numeroManual` `CA-<account>=` (the account's manual
//!   reference), `nomeCartao` the embossed name (upper case, no accents, at most 26),
//!   `diaVencimento`, `dataValidade` the first day of the expiry month.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::br::{self, field_error};
use super::referencias::operation;
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::config::Product;
use crate::api::domain::{CardKind, CardStatus};
use crate::api::issuing::product_code;
use crate::api::issuing::{self, expiry_in};
use crate::api::store::{Account, Body, NewCard, Records, new_id};
use crate::handler_tx;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::own(
            Method::POST,
            "/api/v1/portadores/contas/pf",
            doc_pf,
            handler_tx!(conta_pf),
        ),
        Route::own(
            Method::POST,
            "/api/v1/portadores/contas/pj",
            doc_pj,
            handler_tx!(conta_pj),
        ),
    ]
}

fn address_schema() -> Value {
    json!({"type": "object", "properties": {
        "numero": {"type": "string"}, "cep": {"type": "string", "pattern": "^[0-9]{5}-?[0-9]{3}$"},
        "complemento": {"type": "string"}, "logradouro": {"type": "string"},
        "bairro": {"type": "string"}, "localidade": {"type": "string"},
        "uf": {"type": "string", "enum": br::UFS}, "empresa": {"type": "string"},
        "departamento": {"type": "string"}, "cnpj": {"type": "string"}, "tipo": {"type": "string"}
    }})
}

fn phone_schema() -> Value {
    json!({"type": "object", "properties": {
        "tipo": {"type": "string"}, "ramal": {"type": "string"}, "area": {"type": "string"},
        "telefone": {"type": "string"}, "receberSMS": {"type": "boolean"}, "faturaDigital": {"type": "boolean"}
    }})
}

fn answer_schema() -> Value {
    json!({"type": "object", "required": ["contaCartao", "cartaoMascarado", "numeroManual", "nomeCartao", "diaVencimento", "dataValidade"],
    "properties": {
        "idPortador": {"type": "integer"}, "contaCartao": {"type": "integer"},
        "cartaoMascarado": {"type": "string"}, "numeroManual": {"type": "string"},
        "nomeCartao": {"type": "string"}, "diaVencimento": {"type": "integer"},
        "dataValidade": {"type": "string", "format": "date"}
    }})
}

fn doc_pf() -> Value {
    operation(
        "Cadastra uma conta para Pessoa Física",
        &[],
        Some(
            json!({"type": "object", "required": ["nome", "cpf", "dataNascimento"], "properties": {
                "nome": {"type": "string"}, "cpf": {"type": "string", "description": "11 digits, check digits verified"},
                "dataNascimento": {"type": "string", "format": "date"}, "rg": {"type": "string"},
                "orgaoEmissor": {"type": "string"}, "renda": {"type": "number", "description": "exact decimal, 2 places"},
                "sexo": {"type": "string"}, "nomeMae": {"type": "string"}, "idProfissao": {"type": "integer"},
                "enderecoResidencial": address_schema(), "enderecoComercial": address_schema(),
                "enderecoAlternativo": address_schema(),
                "adicionais": {"type": "array", "items": {"type": "object"}},
                "referencias": {"type": "array", "items": {"type": "object"}},
                "idLoja": {"type": "integer"}, "limiteRotativo": {"type": "number"},
                "ocupacao": {"type": "string"}, "nacionalidade": {"type": "string"},
                "telefones": {"type": "array", "items": phone_schema()},
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
            json!({"type": "object", "required": ["razaoSocial", "cnpj"], "properties": {
                "razaoSocial": {"type": "string"}, "nomeFantasia": {"type": "string"},
                "cnpj": {"type": "string", "description": "14 characters, numeric or the 2026 alphanumeric format; check digits verified"},
                "dataAbertura": {"type": "string", "format": "date"}, "inscricaoEstadual": {"type": "string"},
                "email": {"type": "string"}, "endereco": address_schema(),
                "telefones": {"type": "array", "items": phone_schema()},
                "idLoja": {"type": "integer"}, "limiteRotativo": {"type": "number"},
                "idProduto": {"type": "integer"}, "diaVencimento": {"type": "integer", "minimum": 1, "maximum": 28},
                "nomeCartao": {"type": "string"}
            }}),
        ),
        ("201", answer_schema()),
    )
}

/// A string field (absent: `None`; another type: 422).
pub(super) fn text<'a>(
    body: &'a Value,
    key: &str,
    field: &str,
) -> Result<Option<&'a str>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(field_error(field, format!("{field} must be a string"))),
    }
}

/// Checks an address object (CEP, UF, company CNPJ).
pub(super) fn check_address(body: &Value, key: &str) -> Result<(), ApiError> {
    let Some(a) = body.get(key).filter(|v| !v.is_null()) else {
        return Ok(());
    };
    if !a.is_object() {
        return Err(field_error(key, format!("{key} must be an object")));
    }
    if let Some(cep) = text(a, "cep", &format!("{key}.cep"))?
        && !br::valid_cep(cep)
    {
        return Err(field_error(&format!("{key}.cep"), "CEP must be 8 digits"));
    }
    if let Some(uf) = text(a, "uf", &format!("{key}.uf"))?
        && !br::valid_uf(uf)
    {
        return Err(field_error(
            &format!("{key}.uf"),
            "UF must be one of the 27 units",
        ));
    }
    if let Some(c) = text(a, "cnpj", &format!("{key}.cnpj"))?
        && !br::valid_cnpj(c)
    {
        return Err(field_error(
            &format!("{key}.cnpj"),
            "CNPJ check digits do not match",
        ));
    }
    Ok(())
}

/// Checks a date field (ISO 8601, not in the future when `past`).
pub(super) fn check_date(body: &Value, key: &str, field: &str, past: bool) -> Result<(), ApiError> {
    if let Some(d) = text(body, key, field)? {
        let Some(date) = br::parse_date(d) else {
            return Err(field_error(field, "dates are ISO 8601: YYYY-MM-DD"));
        };
        if past && br::format_date(date) > issuing::today() {
            return Err(field_error(field, "the date is in the future"));
        }
    }
    Ok(())
}

/// Checks a money field (exact decimal, 0 to 100,000,000.00); `None` when absent.
pub(super) fn check_money(body: &Value, key: &str, field: &str) -> Result<Option<i64>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let v = if v.is_object() { &v["valor"] } else { v };
            match br::parse_money(v) {
                Some(c) if (0..=10_000_000_000).contains(&c) => Ok(Some(c)),
                Some(_) => Err(field_error(field, "out of range (0 to 100000000.00)")),
                None => Err(field_error(
                    field,
                    "money is an exact decimal with at most 2 places",
                )),
            }
        }
    }
}

fn check_phones(body: &Value, key: &str) -> Result<(), ApiError> {
    let Some(list) = body.get(key).filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let Some(list) = list.as_array() else {
        return Err(field_error(key, format!("{key} must be a list")));
    };
    for (i, p) in list.iter().enumerate() {
        let area = p["area"].as_str().unwrap_or("");
        let number = p["telefone"].as_str().unwrap_or("");
        if area.len() != 2 || !area.bytes().all(|b| b.is_ascii_digit()) {
            return Err(field_error(
                &format!("{key}[{i}].area"),
                "area code: 2 digits",
            ));
        }
        if !(8..=9).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(field_error(
                &format!("{key}[{i}].telefone"),
                "phone: 8 or 9 digits",
            ));
        }
    }
    Ok(())
}

fn check_loja(ctx: &Ctx) -> Result<(), ApiError> {
    match ctx.body.get("idLoja") {
        None | Some(Value::Null) => Ok(()),
        Some(v) => {
            let given = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Err(field_error("idLoja", "idLoja must be a number")),
            };
            if given == ctx.tenant.as_str() {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "loja_mismatch",
                    "idLoja is not the caller's store",
                )
                .field("idLoja"))
            }
        }
    }
}

/// The product of `idProduto`.
pub(super) fn product_for(ctx: &Ctx, field: &str) -> Result<Product, ApiError> {
    let id = match ctx.body.get(field) {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_i64()
            .filter(|n| *n >= 0)
            .ok_or_else(|| field_error(field, "idProduto must be a non-negative integer"))?,
    };
    let products = &ctx.app.config.products;
    let found = if id == 0 {
        products.first()
    } else {
        products.iter().find(|p| p.logo == id)
    };
    found
        .cloned()
        .ok_or_else(|| field_error(field, "no such product"))
}

fn due_day(body: &Value) -> Result<i64, ApiError> {
    match body.get("diaVencimento") {
        None | Some(Value::Null) => Ok(10),
        Some(v) => v
            .as_i64()
            .filter(|d| (1..=28).contains(d))
            .ok_or_else(|| field_error("diaVencimento", "diaVencimento must be 1-28")),
    }
}

/// The embossed name: upper case, no accents, letters and spaces, at most 26.
pub(super) fn card_name(name: &str) -> String {
    let mut n: String = br::fold(name)
        .to_ascii_uppercase()
        .chars()
        .filter(|c| c.is_ascii_alphabetic() || *c == ' ')
        .collect();
    n.truncate(26);
    n.trim().to_owned()
}

struct Opening {
    tipo: &'static str,
    documento: String,
    rg: String,
    nome: String,
    nome_cartao: String,
}

async fn conta_pf(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let b = &ctx.body;
    if !b.is_object() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "a JSON object is required",
        ));
    }
    check_loja(&ctx)?;
    let nome = text(b, "nome", "nome")?.map(str::trim).unwrap_or("");
    if nome.is_empty() || nome.chars().count() > 120 {
        return Err(field_error("nome", "nome: 1-120 characters"));
    }
    let cpf = text(b, "cpf", "cpf")?
        .and_then(br::cpf)
        .ok_or_else(|| field_error("cpf", "CPF check digits do not match"))?;
    if text(b, "dataNascimento", "dataNascimento")?.is_none() {
        return Err(field_error("dataNascimento", "dataNascimento is required"));
    }
    check_date(b, "dataNascimento", "dataNascimento", true)?;
    check_money(b, "renda", "renda")?;
    for key in [
        "enderecoResidencial",
        "enderecoComercial",
        "enderecoAlternativo",
    ] {
        check_address(b, key)?;
    }
    check_phones(b, "telefones")?;
    if let Some(list) = b.get("adicionais").filter(|v| !v.is_null()) {
        let Some(list) = list.as_array() else {
            return Err(field_error("adicionais", "adicionais must be a list"));
        };
        for (i, a) in list.iter().enumerate() {
            if text(a, "cpf", &format!("adicionais[{i}].cpf"))?.is_some_and(|c| !br::valid_cpf(c)) {
                return Err(field_error(
                    &format!("adicionais[{i}].cpf"),
                    "CPF check digits do not match",
                ));
            }
            check_date(
                a,
                "dataNascimento",
                &format!("adicionais[{i}].dataNascimento"),
                true,
            )?;
        }
    }
    let rg = text(b, "rg", "rg")?.unwrap_or("").trim().to_owned();
    open(
        &ctx,
        &mut r,
        Opening {
            tipo: "PF",
            documento: cpf,
            rg,
            nome: nome.to_owned(),
            nome_cartao: card_name(nome),
        },
    )
    .await
}

async fn conta_pj(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let b = &ctx.body;
    if !b.is_object() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "a JSON object is required",
        ));
    }
    check_loja(&ctx)?;
    let razao = text(b, "razaoSocial", "razaoSocial")?
        .map(str::trim)
        .unwrap_or("");
    if razao.is_empty() || razao.chars().count() > 150 {
        return Err(field_error("razaoSocial", "razaoSocial: 1-150 characters"));
    }
    let cnpj = text(b, "cnpj", "cnpj")?
        .and_then(br::cnpj)
        .ok_or_else(|| field_error("cnpj", "CNPJ check digits do not match"))?;
    check_date(b, "dataAbertura", "dataAbertura", true)?;
    check_address(b, "endereco")?;
    check_phones(b, "telefones")?;
    let shown = text(b, "nomeCartao", "nomeCartao")?
        .or(text(b, "nomeFantasia", "nomeFantasia")?)
        .unwrap_or(razao);
    open(
        &ctx,
        &mut r,
        Opening {
            tipo: "PJ",
            documento: cnpj,
            rg: String::new(),
            nome: razao.to_owned(),
            nome_cartao: card_name(shown),
        },
    )
    .await
}

/// The customer document of a portador: unique per tenant, distinct from the processor
/// path's documents.
pub(super) fn document_key(tipo: &str, documento: &str, tenant: &str) -> String {
    format!("{tipo}:{documento}@{tenant}")
}

async fn open(ctx: &Ctx, r: &mut Records<'_>, o: Opening) -> Result<Reply, ApiError> {
    let b = &ctx.body;
    let limit = check_money(b, "limiteRotativo", "limiteRotativo")?.unwrap_or(0);
    let due = due_day(b)?;
    let product = product_for(ctx, "idProduto")?;
    if !r.portadores_by_document(&o.documento).await?.is_empty() {
        return Err(
            ApiError::conflict("portador_exists", "a portador with this document exists")
                .field(if o.tipo == "PF" { "cpf" } else { "cnpj" }),
        );
    }
    // The daemon first: nothing is recorded if the card cannot be issued.
    let issued = issuing::issue(&ctx.app, &product).await?;
    let id = new_id();
    let customer = r
        .create_customer(
            id,
            &document_key(o.tipo, &o.documento, ctx.tenant.as_str()),
            &o.nome,
            b,
        )
        .await?;
    r.index_portador(customer.id, o.tipo, &o.documento, &o.rg, &br::fold(&o.nome))
        .await?;
    let account = r
        .create_account(&Account {
            id: new_id(),
            customer_id: customer.id,
            product: product_code(&product),
            credit_limit: limit,
            cycle_day: due,
            body: Body(json!({"origem": "portadores", "tipoPessoa": o.tipo})),
            status: "active".into(),
            tenant: ctx.tenant.to_string(),
        })
        .await?;
    if limit > 0 {
        r.record_limit_change(customer.id, account.id, "limiteRotativo", 0, limit)
            .await?;
    }
    let expiry = expiry_in(product.validity_years.unwrap_or(5));
    let card = r
        .create_card(
            NewCard {
                account_id: account.id,
                customer_id: customer.id,
                token: issued.token,
                token_version: issued.token_version,
                lookup_token: issued.lookup_token,
                masked_pan: issued.masked_pan,
                kind: CardKind::PhysicalCredit,
                expiry: expiry.clone(),
                service_code: product.service_code.clone().unwrap_or_else(|| "201".into()),
                pvv: issued.pvv,
                pin_blob: issued.pin_blob,
                body: json!({"embossedName": o.nome_cartao, "origem": "portadores"}),
                credit_limit: 0,
            },
            CardStatus::Active,
            "create",
        )
        .await?;
    Reply::created(json!({
        "idPortador": customer.id,
        "contaCartao": account.id,
        "cartaoMascarado": card.masked_pan.replace('*', "X"),
        "numeroManual": format!("CA-{}=", account.id),
        "nomeCartao": o.nome_cartao,
        "diaVencimento": due,
        "dataValidade": format!("20{}-{}-01", &expiry[0..2], &expiry[2..4]),
    }))
}
