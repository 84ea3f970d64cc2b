//! Dependents (additional cardholders): `POST` and `GET
//! /api/v1/portadores/{idPortador}/dependentes`, `GET
//! /api/v1/portadores/dependentes/cpf?cpf=` (by the holder's CPF).
//!
//! Choices where the document is silent:
//! * The POST body is an array of dependents, or an object with that array under
//!   `adicionais` (the account-opening name) or `dependentes`; 1 to 10 per call. Each:
//!   `nome` (required, up to 100), `cpf` (required, valid check digits, punctuation
//!   allowed), `dataNascimento` (required, `YYYY-MM-DD`, not in the future), and
//!   optional `sexo`, `grauParentesco`, `nomePersonalizado` (name on the card, up to
//!   26), `nomeSocial`, `nomeMae`, `rg`, kept as sent. Every dependent is checked before
//!   anything is created.
//! * Each dependent becomes a customer record of the caller's tenant (document = the
//!   CPF's 11 digits, which must be new; body = the dependent as sent plus `titular` =
//!   the holder's id) and gets a card issued by the daemon on the HOLDER's first
//!   account, of that account's product. The card record's customer is the holder (the
//!   account's owner; the store requires it) and its body carries `dependente` = the
//!   dependent's id; the link is kept in `portador_dependents`. The card is active at
//!   once, like the holder's card at account opening.
//! * The list's `status` is `A` (card active), `B` (blocked), `I` (inactive) or `C`
//!   (cancelled or replaced); `statusCartao` is the card's status word.

use crate::api::domain::{CardKind, CardStatus};
use axum::http::Method;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::common::{Portador, from_path, load, not_found};
use super::historico::date_days;
use super::referencias::{operation, path_id};
use super::vipagem::product_of;
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::issuing::{expiry_in, issue};
use crate::api::store::{NewCard, Records, new_id};
use crate::handler_tx;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::own(
            Method::POST,
            "/api/v1/portadores/{idPortador}/dependentes",
            doc_add,
            handler_tx!(add),
        ),
        Route::own(
            Method::GET,
            "/api/v1/portadores/{idPortador}/dependentes",
            doc_list,
            handler_tx!(list),
        ),
        Route::own(
            Method::GET,
            "/api/v1/portadores/dependentes/cpf",
            doc_by_cpf,
            handler_tx!(by_cpf),
        ),
    ]
}

fn dependent_schema() -> Value {
    json!({"type": "object", "required": ["nome", "cpf", "dataNascimento"], "properties": {
        "nome": {"type": "string", "maxLength": 100},
        "cpf": {"type": "string"},
        "dataNascimento": {"type": "string", "format": "date"},
        "sexo": {"type": "string"},
        "grauParentesco": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "nomePersonalizado": {"type": "string", "maxLength": 26},
        "nomeSocial": {"type": "string"}, "nomeMae": {"type": "string"}, "rg": {"type": "string"}
    }})
}

fn list_schema() -> Value {
    json!({"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "integer"}, "idClienteTitularAssociado": {"type": "integer"},
        "nome": {"type": "string"}, "nomeSocial": {"type": "string"}, "cpf": {"type": "string"},
        "dataNascimento": {"type": "string"}, "sexo": {"type": "string"},
        "idGrauParentesco": {}, "nomeMae": {"type": "string"},
        "persisted": {"type": "boolean"}, "status": {"type": "string"},
        "idCartao": {"type": "integer"}, "cartaoMascarado": {"type": "string"},
        "statusCartao": {"type": "string"}
    }}})
}

fn doc_add() -> Value {
    operation(
        "Cadastra dependentes à um portador titular",
        &[path_id()],
        Some(json!({"oneOf": [
            {"type": "array", "items": dependent_schema(), "minItems": 1, "maxItems": 10},
            {"type": "object", "properties": {"adicionais": {"type": "array", "items": dependent_schema()}}}
        ]})),
        ("201", list_schema()),
    )
}

fn doc_list() -> Value {
    operation(
        "Lista as pessoas dependentes através do identificador do titular",
        &[path_id()],
        None,
        ("200", list_schema()),
    )
}

fn doc_by_cpf() -> Value {
    operation(
        "Lista as pessoas adicionais através do CPF do titular",
        &[("cpf", "query", true, "The holder's CPF")],
        None,
        ("200", list_schema()),
    )
}

fn text_field(
    v: &Value,
    field: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null if !required => Ok(None),
        Value::String(s) if !s.trim().is_empty() && s.chars().count() <= max => {
            Ok(Some(s.trim().to_owned()))
        }
        _ => Err(ApiError::unprocessable(
            "invalid_field",
            format!("{field}: a text of 1 to {max} characters"),
        )
        .field(field)),
    }
}

struct Dependent {
    name: String,
    cpf: String,
    body: Value,
}

fn parse_dependents(body: &Value, holder_document: &str) -> Result<Vec<Dependent>, ApiError> {
    let (list, base) = match body {
        Value::Array(a) => (a, String::new()),
        Value::Object(o) => match (o.get("adicionais"), o.get("dependentes")) {
            (Some(Value::Array(a)), _) => (a, "/adicionais".to_owned()),
            (_, Some(Value::Array(a))) => (a, "/dependentes".to_owned()),
            _ => {
                return Err(ApiError::unprocessable(
                    "invalid_body",
                    "an array of dependents (or under adicionais) is required",
                )
                .field("/adicionais"));
            }
        },
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_body",
                "an array of dependents is required",
            ));
        }
    };
    if list.is_empty() || list.len() > 10 {
        return Err(
            ApiError::unprocessable("invalid_body", "1 to 10 dependents per call").field(base),
        );
    }
    let today = date_days(&crate::api::issuing::today()).unwrap_or(i64::MAX);
    let mut out: Vec<Dependent> = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let at = |f: &str| format!("{base}/{i}/{f}");
        if !d.is_object() {
            return Err(
                ApiError::unprocessable("invalid_body", "a dependent is an object")
                    .field(format!("{base}/{i}")),
            );
        }
        let name = text_field(&d["nome"], &at("nome"), 100, true)?.unwrap_or_default();
        let cpf = d["cpf"].as_str().and_then(super::br::cpf).ok_or_else(|| {
            ApiError::unprocessable("cpf_invalido", "invalid CPF").field(at("cpf"))
        })?;
        if cpf == holder_document || out.iter().any(|o| o.cpf == cpf) {
            return Err(
                ApiError::unprocessable("cpf_duplicado", "the CPF is repeated").field(at("cpf")),
            );
        }
        let born = d["dataNascimento"].as_str().and_then(date_days);
        if born.is_none_or(|b| b > today) {
            return Err(ApiError::unprocessable(
                "data_invalida",
                "dataNascimento: a past date YYYY-MM-DD",
            )
            .field(at("dataNascimento")));
        }
        text_field(&d["nomePersonalizado"], &at("nomePersonalizado"), 26, false)?;
        for f in ["sexo", "nomeSocial", "nomeMae", "rg"] {
            text_field(&d[f], &at(f), 100, false)?;
        }
        out.push(Dependent {
            name,
            cpf,
            body: d.clone(),
        });
    }
    Ok(out)
}

async fn add(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    let deps = parse_dependents(&ctx.body, &p.customer.document)?;
    for (i, d) in deps.iter().enumerate() {
        if r.customer_by_document(&d.cpf).await?.is_some() {
            return Err(ApiError::unprocessable(
                "cpf_ja_cadastrado",
                "a customer with this CPF exists",
            )
            .field(format!("/{i}/cpf")));
        }
    }
    let account = p.accounts.first().ok_or_else(|| {
        ApiError::unprocessable("sem_conta", "the holder has no account to add cards to")
    })?;
    let product = product_of(&ctx.app, account, &p.cards)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "produto_desconhecido",
                "the account's product is not configured",
            )
        })?
        .clone();
    let holder = p.customer.id;
    let mut created = Vec::new();
    for d in deps {
        let mut body = d.body.clone();
        body["titular"] = json!(holder);
        // One person may be an additional on several accounts (a child on both
        // parents'): an existing customer with this CPF in the tenant is reused.
        let dep = match r.customer_by_document(&d.cpf).await? {
            Some(existing) => existing,
            None => r.create_customer(new_id(), &d.cpf, &d.name, &body).await?,
        };
        let issued = issue(&ctx.app, &product).await?;
        let card_name = d.body["nomePersonalizado"]
            .as_str()
            .unwrap_or(&d.name)
            .to_uppercase();
        let card = r
            .create_card(
                NewCard {
                    account_id: account.id,
                    customer_id: holder,
                    token: issued.token,
                    token_version: issued.token_version,
                    lookup_token: issued.lookup_token,
                    masked_pan: issued.masked_pan,
                    kind: CardKind::PhysicalCredit,
                    expiry: expiry_in(product.validity_years.unwrap_or(5)),
                    service_code: product.service_code.clone().unwrap_or_else(|| "201".into()),
                    pvv: issued.pvv,
                    pin_blob: issued.pin_blob,
                    body: json!({"dependente": dep.id, "titular": holder, "nomeCartao": card_name}),
                    credit_limit: 0,
                },
                CardStatus::Active,
                "create",
            )
            .await?;
        r.link_dependent(dep.id, holder, account.id, card.id)
            .await?;
        created.push(view(
            holder,
            &dep.body,
            dep.id,
            &dep.name,
            &dep.document,
            &card,
        ));
    }
    Reply::created(Value::Array(created))
}

fn view(
    holder: i64,
    body: &Value,
    id: i64,
    name: &str,
    cpf: &str,
    card: &crate::api::store::Card,
) -> Value {
    let status = match card.status.as_str() {
        "active" => "A",
        "blocked" => "B",
        "inactive" => "I",
        _ => "C",
    };
    json!({
        "id": id,
        "idClienteTitularAssociado": holder,
        "nome": name,
        "nomeSocial": body["nomeSocial"],
        "cpf": cpf,
        "dataNascimento": body["dataNascimento"],
        "sexo": body["sexo"],
        "idGrauParentesco": body["grauParentesco"],
        "nomeMae": body["nomeMae"],
        "persisted": true,
        "status": status,
        "idCartao": card.id,
        "cartaoMascarado": card.masked_pan,
        "statusCartao": card.status,
    })
}

async fn list_of(r: &mut Records<'_>, p: &Portador) -> Result<Reply, ApiError> {
    let mut out = Vec::new();
    for link in r.dependents_of(p.customer.id).await? {
        let dep = r.customer(link.dependent_id).await?;
        let card = r.card(link.card_id).await?;
        out.push(view(
            p.customer.id,
            &dep.body,
            dep.id,
            &dep.name,
            &dep.document,
            &card,
        ));
    }
    Reply::ok(Value::Array(out))
}

async fn list(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    list_of(&mut r, &p).await
}

async fn by_cpf(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let cpf = ctx
        .query("cpf")
        .and_then(super::br::cpf)
        .ok_or_else(|| ApiError::unprocessable("cpf_invalido", "invalid CPF").field("cpf"))?;
    let holder = r.customer_by_document(&cpf).await?.ok_or_else(not_found)?;
    let p = load(&mut r, holder.id).await?;
    list_of(&mut r, &p).await
}
