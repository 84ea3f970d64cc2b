//! Dependents (additional cardholders): `POST` and `GET
//! /api/v1/portadores/{idPortador}/dependentes`, `GET
//! /api/v1/portadores/dependentes/cpf?cpf=` (by the **titular's** CPF), and the
//! additionals of account opening (`adicionais` of `POST /contas/pf`), which go the
//! same way.
//!
//! Choices where the document is silent:
//! * The POST body is an array of dependents, or an object with it under `adicionais`
//!   (the account-opening name) or `dependentes`. Each: `nome` (required, 2-120),
//!   `cpf` (required, check digits; not the titular's own, not twice in one call),
//!   `dataNascimento` (required; a dependent is 16 to 120 years old), `grauParentesco`
//!   (required: a code or id of the kinship table, e.g. `OUTROS`, `FILHO`), `sexo`,
//!   `nomePersonalizado` (the name on the card: at most 26 characters once embossed),
//!   `nomeSocial`, `nomeMae`, `rg`. Every dependent is checked before anything is made.
//! * A titular has at most [`MAX_DEPENDENTS`] dependents with a card in use; a CPF
//!   already a dependent of this titular is `409 dependent_exists`; a titular cannot be
//!   its own dependent.
//! * Each dependent is a customer record of the caller's tenant (one person may be an
//!   additional on several titulars' accounts: the record is shared) with a card issued
//!   by the daemon on the titular's first account, of that account's product, active
//!   at once. `GET /{idDependente}` shows the dependent as a portador (its card, its
//!   CPF, `idPortadorTitular`).
//! * `GET /dependentes/cpf` takes the titular's CPF; a CPF of no titular (a dependent's
//!   included) is `404 portador_not_found`.

use axum::http::Method;
use serde_json::{Value, json};

use super::adicionais::{Adicional, AdicionalReq, check_adicionais};
use super::common::{Portador, from_path, load, not_found};
use super::input::{self, Checks, Field};
use super::pessoa::check_cpf;
use super::referencias::{list_schema_of, operation, path_id, ref_data, route};
use super::vipagem::product_of;
use super::visao::dependente;
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::br::Cpf;
use crate::api::domain::{CardKind, CardStatus};
use crate::api::issuing::{Issued, expiry_in, issue, today_date};
use crate::api::state::App;
use crate::api::store::{Account, NewCard, Records, new_id};
use crate::handler;

/// Most dependents with a card in use per titular.
pub const MAX_DEPENDENTS: usize = 9;
/// A dependent's minimum age.
pub const DEPENDENT_MIN_AGE: i32 = 16;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/api/v1/portadores/{idPortador}/dependentes",
            doc_add,
            handler!(add),
        ),
        route(
            Method::GET,
            "/api/v1/portadores/{idPortador}/dependentes",
            doc_list,
            handler!(list),
        ),
        route(
            Method::GET,
            "/api/v1/portadores/dependentes/cpf",
            doc_by_cpf,
            handler!(by_cpf),
        ),
    ]
}

fn dependent_schema() -> Value {
    json!({"type": "object", "required": ["nome", "cpf", "dataNascimento", "grauParentesco"], "properties": {
        "nome": {"type": "string", "maxLength": 120}, "cpf": {"type": "string"},
        "dataNascimento": {"type": "string", "format": "date"},
        "sexo": {"type": "string", "enum": ["MASCULINO", "FEMININO", "NAO_INFORMADO", "M", "F"]},
        "grauParentesco": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "nomePersonalizado": {"type": "string", "maxLength": 26},
        "nomeSocial": {"type": "string"}, "nomeMae": {"type": "string"}, "rg": {"type": "string"}
    }})
}

fn list_schema() -> Value {
    list_schema_of(json!({"type": "object", "properties": {
        "id": {"type": "integer"}, "idClienteTitularAssociado": {"type": "integer"},
        "nome": {"type": "string"}, "nomeSocial": {"type": "string", "nullable": true}, "cpf": {"type": "string"},
        "dataNascimento": {"type": "string"}, "sexo": {"type": "string", "nullable": true},
        "idGrauParentesco": {"type": "integer"}, "nomeMae": {"type": "string", "nullable": true},
        "persisted": {"type": "boolean"}, "status": {"type": "string", "enum": ["A", "B", "I", "C"]},
        "idCartao": {"type": "integer"}, "cartaoMascarado": {"type": "string"},
        "statusCartao": {"type": "string"}
    }}))
}

fn doc_add() -> Value {
    operation(
        "Cadastra dependentes à um portador titular",
        &[path_id()],
        Some(json!({"oneOf": [
            {"type": "array", "items": dependent_schema(), "minItems": 1, "maxItems": MAX_DEPENDENTS},
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
        &[("cpf", "query", true, "CPF do titular")],
        None,
        ("200", list_schema()),
    )
}

/// Issues one card per dependent on the titular's account (daemon calls, before the
/// transaction).
pub async fn issue_cards(
    app: &App,
    account: &Account,
    p: &Portador,
    n: usize,
) -> Result<Vec<Issued>, ApiError> {
    let product = product_of(app, account, &p.cards).ok_or_else(|| {
        ApiError::unprocessable(
            "unknown_product",
            "O produto da conta não está configurado.",
        )
    })?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(issue(app, product).await?);
    }
    Ok(out)
}

/// Creates the dependents in the transaction: each a customer (an existing one with the
/// CPF is reused), a card on `account`, a link. A CPF already a dependent of this
/// titular is `409`; more than [`MAX_DEPENDENTS`] live dependents is `422`.
pub async fn create_dependents(
    r: &mut Records<'_>,
    holder: i64,
    account: &Account,
    (validity_years, service_code): (u32, &str),
    deps: Vec<Adicional>,
    issued: Vec<Issued>,
    kinship: &[crate::api::store::CodeRow],
) -> Result<Vec<Value>, ApiError> {
    r.lock_customer(holder).await?;
    let existing = r.dependents_of(holder).await?;
    let mut live = 0;
    let mut existing_cpfs = Vec::new();
    for l in &existing {
        let card = r.card(l.card_id).await?;
        if !card.status.is_final() {
            live += 1;
        }
        existing_cpfs.push(r.customer(l.dependent_id).await?.document);
    }
    if live + deps.len() > MAX_DEPENDENTS {
        return Err(ApiError::unprocessable(
            "too_many_dependents",
            format!("Um titular tem no máximo {MAX_DEPENDENTS} dependentes com cartão ativo."),
        ));
    }
    let mut created = Vec::new();
    for (i, (d, card)) in deps.into_iter().zip(issued).enumerate() {
        if existing_cpfs.iter().any(|c| c == d.cpf.as_str()) {
            return Err(ApiError::conflict(
                "dependent_exists",
                "Este CPF já é dependente deste titular.",
            )
            .field(format!("adicionais[{i}].cpf")));
        }
        let mut body = d.body.clone();
        body["titular"] = json!(holder);
        let dep = match r.customer_by_document(d.cpf.as_str()).await? {
            Some(c) => c,
            None => {
                r.create_customer(new_id(), d.cpf.as_str(), &d.nome, &body)
                    .await?
            }
        };
        let card = r
            .create_card(
                NewCard {
                    account_id: account.id,
                    customer_id: holder,
                    token: card.token,
                    token_version: card.token_version,
                    lookup_token: card.lookup_token,
                    masked_pan: card.masked_pan,
                    kind: CardKind::PhysicalCredit,
                    expiry: expiry_in(validity_years),
                    service_code: service_code.to_owned(),
                    pvv: card.pvv,
                    pin_blob: card.pin_blob,
                    body: json!({"dependente": dep.id, "titular": holder, "embossedName": d.nome_cartao}),
                    credit_limit: 0,
                },
                CardStatus::Active,
                "create",
            )
            .await?;
        r.link_dependent(dep.id, holder, account.id, card.id)
            .await?;
        created.push(dependente(holder, &dep, &card, kinship));
    }
    Ok(created)
}

async fn add(ctx: Ctx) -> Result<Reply, ApiError> {
    let list: Vec<Field<AdicionalReq>> = match &ctx.body {
        Value::Array(_) => input::body(&ctx.body, "uma lista de dependentes")?,
        Value::Object(o) => {
            let inner = o
                .get("adicionais")
                .or(o.get("dependentes"))
                .cloned()
                .unwrap_or(Value::Null);
            input::body(
                &inner,
                "uma lista de dependentes (ou um objeto com adicionais)",
            )?
        }
        _ => input::body(&Value::Null, "uma lista de dependentes")?,
    };
    let base = if ctx.body.is_array() {
        ""
    } else {
        "adicionais"
    };
    let (p, refs) = {
        let mut reader = ctx.reader().await?;
        let mut r = reader.records();
        (from_path(&ctx, &mut r).await?, ref_data(&mut r).await?)
    };
    if !p.is_titular() {
        return Err(ApiError::unprocessable(
            "not_titular",
            "Um dependente não tem dependentes.",
        ));
    }
    let account = p.main_account().cloned().ok_or_else(|| {
        ApiError::unprocessable(
            "no_account",
            "O titular não tem conta para receber cartões.",
        )
    })?;
    let mut chk = Checks::new();
    if list.is_empty() || list.len() > MAX_DEPENDENTS {
        chk.fail(
            if base.is_empty() { "[]" } else { base },
            "count",
            format!("de 1 a {MAX_DEPENDENTS} dependentes"),
        );
    }
    let holder_cpf = p.documento.as_str().to_owned();
    let deps = check_adicionais(
        &mut chk,
        base,
        &list,
        &refs,
        today_date(),
        Some(&holder_cpf),
    );
    chk.finish()?;
    let issued = issue_cards(&ctx.app, &account, &p, deps.len()).await?;
    let product = product_of(&ctx.app, &account, &p.cards).cloned();
    let (years, service) = product.map_or((5, "201".to_owned()), |pr| {
        (
            pr.validity_years.unwrap_or(5),
            pr.service_code.unwrap_or_else(|| "201".into()),
        )
    });
    let holder = p.customer.id;
    let kinship = refs.kinship.clone();
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            let created = create_dependents(
                &mut r,
                holder,
                &account,
                (years, &service),
                deps,
                issued,
                &kinship,
            )
            .await?;
            Reply::created(Value::Array(created))
        })
    })
    .await
}

async fn list_of(
    r: &mut Records<'_>,
    p: &Portador,
    kinship: &[crate::api::store::CodeRow],
) -> Result<Reply, ApiError> {
    let mut out = Vec::new();
    for (link, card) in &p.dependents {
        let dep = r.customer(link.dependent_id).await?;
        out.push(dependente(p.customer.id, &dep, card, kinship));
    }
    Reply::ok(Value::Array(out))
}

async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let p = from_path(&ctx, &mut r).await?;
    let kinship = r.kinship_degrees().await?;
    list_of(&mut r, &p, &kinship).await
}

/// The titular with this CPF (opened with `POST /contas/pf`, or a processor customer
/// that owns an account).
pub async fn titular_by_cpf(r: &mut Records<'_>, cpf: &Cpf) -> Result<Option<Portador>, ApiError> {
    if let Some(id) = r
        .portadores_by_document(cpf.as_str())
        .await?
        .into_iter()
        .next()
    {
        return load(r, id).await.map(Some);
    }
    match r
        .account_holders_by_document(cpf.as_str())
        .await?
        .into_iter()
        .next()
    {
        Some(id) => load(r, id).await.map(Some),
        None => Ok(None),
    }
}

async fn by_cpf(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut chk = Checks::new();
    let raw = Field::Value(ctx.query("cpf").unwrap_or("").to_owned());
    let cpf = check_cpf(&mut chk, "cpf", &raw, true);
    chk.finish()?;
    let Some(cpf) = cpf else {
        return Err(not_found());
    };
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let p = titular_by_cpf(&mut r, &cpf).await?.ok_or_else(not_found)?;
    let kinship = r.kinship_degrees().await?;
    list_of(&mut r, &p, &kinship).await
}
