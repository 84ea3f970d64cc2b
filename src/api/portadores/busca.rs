//! Lookups: `GET /api/v1/portadores/{idPortador}` and `/{idPortador}/informacoes`
//! (the full view), `/completo/cpf?cpf=` (the full view of the titular with this CPF),
//! `/simplificado/cpf?cpf=` (the short view), `/contas?cpf=|cnpj=`, `/rg?rg=`,
//! `/cnpj?cnpj=` (account lists), `/nomes?nome=` (accent- and case-insensitive, cursor
//! pagination: `limite` 1-100, default 20, and `cursor` from the previous page's
//! `proximoCursor`), `/lote?ids=1,2,3` (at most 100, short views). Every lookup sees
//! only the caller's tenant and reads outside the writer (read pool). The views are
//! described in `visao`.

use axum::http::Method;
use serde_json::{Value, json};

use super::common::{Portador, from_path, load, not_found};
use super::dependentes::titular_by_cpf;
use super::input::{Checks, Field, Text};
use super::pessoa::check_cpf;
use super::referencias::{operation, path_id, route};
use super::vipagem::product_of;
use super::visao::{self, Extras};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::br::{self, Cnpj};
use crate::api::domain::{Date, PinStatus};
use crate::api::issuing::{hsm_card, today_date};
use crate::api::store::Records;
use crate::handler;
use crate::protocol::Tag;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    let r = |path, doc, h| route(Method::GET, path, doc, h);
    vec![
        r(
            "/api/v1/portadores/{idPortador}",
            doc_get,
            handler!(get_one),
        ),
        r(
            "/api/v1/portadores/{idPortador}/informacoes",
            doc_info,
            handler!(info),
        ),
        r("/api/v1/portadores/contas", doc_contas, handler!(contas)),
        r("/api/v1/portadores/rg", doc_rg, handler!(by_rg)),
        r(
            "/api/v1/portadores/completo/cpf",
            doc_completo,
            handler!(completo),
        ),
        r(
            "/api/v1/portadores/simplificado/cpf",
            doc_simplificado,
            handler!(simplificado),
        ),
        r("/api/v1/portadores/nomes", doc_nomes, handler!(nomes)),
        r("/api/v1/portadores/cnpj", doc_cnpj, handler!(by_cnpj)),
        r("/api/v1/portadores/lote", doc_lote, handler!(lote)),
    ]
}

fn resumo_schema() -> Value {
    json!({"type": "object", "required": ["id", "nome"], "properties": {
        "id": {"type": "integer"}, "nome": {"type": "string"}, "cpf": {"type": "string"},
        "cnpj": {"type": "string"}, "idLoja": {"type": "integer"}, "idCartao": {"type": "integer", "nullable": true},
        "cartao": {"type": "string", "nullable": true}, "numeroCartaoTruncado": {"type": "string", "nullable": true},
        "statusCliente": {"type": "string"}, "statusCartao": {"type": "string", "nullable": true}
    }})
}

fn completo_schema() -> Value {
    let mut s = resumo_schema();
    for k in [
        "extratoClienteResponse",
        "ciclo",
        "produto",
        "enderecoResidencial",
        "enderecoComercial",
        "enderecoAlternativo",
    ] {
        s["properties"][k] = json!({"type": "object", "nullable": true});
    }
    for k in ["rendas", "dependentes", "boletos", "taxas"] {
        s["properties"][k] = json!({"type": "array"});
    }
    s
}

fn contas_schema() -> Value {
    json!({"type": "array", "items": {"type": "object", "properties": {
        "idConta": {"type": "integer"}, "idPortador": {"type": "integer"}, "nome": {"type": "string"},
        "cartaoMascarado": {"type": "string"}, "statusConta": {"type": "string"},
        "statusCartao": {"type": "string"}, "produto": {"type": "string"},
        "limiteRotativo": {"type": "number"}
    }}})
}

fn doc_get() -> Value {
    operation(
        "Informações do portador (visão completa)",
        &[path_id()],
        None,
        ("200", completo_schema()),
    )
}
fn doc_info() -> Value {
    operation(
        "Lista as informações do portador a partir do seu identificador",
        &[path_id()],
        None,
        ("200", completo_schema()),
    )
}
fn doc_contas() -> Value {
    operation(
        "Lista as contas associadas a um CPF ou a um CNPJ",
        &[
            ("cpf", "query", false, "CPF"),
            ("cnpj", "query", false, "CNPJ"),
        ],
        None,
        ("200", contas_schema()),
    )
}
fn doc_rg() -> Value {
    operation(
        "Lista as contas de uma Pessoa Física pelo RG",
        &[("rg", "query", true, "RG")],
        None,
        ("200", contas_schema()),
    )
}
fn doc_completo() -> Value {
    operation(
        "Lista todas as informações de um portador através do CPF",
        &[("cpf", "query", true, "CPF")],
        None,
        ("200", completo_schema()),
    )
}
fn doc_simplificado() -> Value {
    operation(
        "Lista as principais informações do portador a partir do CPF",
        &[("cpf", "query", true, "CPF")],
        None,
        ("200", resumo_schema()),
    )
}
fn doc_nomes() -> Value {
    operation(
        "Lista as contas associadas a um portador através do seu nome (sem distinção de acentos e maiúsculas), paginado",
        &[
            ("nome", "query", true, "Parte do nome, 2 a 100 caracteres"),
            ("limite", "query", false, "Itens por página, 1-100 (20)"),
            ("cursor", "query", false, "proximoCursor da página anterior"),
        ],
        None,
        (
            "200",
            json!({"type": "object", "required": ["itens"], "properties": {
            "itens": {"type": "array", "items": resumo_schema()}, "proximoCursor": {"type": "string", "nullable": true}}}),
        ),
    )
}
fn doc_cnpj() -> Value {
    operation(
        "Lista as contas associadas a um CNPJ",
        &[("cnpj", "query", true, "CNPJ")],
        None,
        ("200", contas_schema()),
    )
}
fn doc_lote() -> Value {
    operation(
        "Lista informações sobre vários portadores simultaneamente (até 100 ids separados por vírgula)",
        &[("ids", "query", true, "ids")],
        None,
        (
            "200",
            json!({"type": "object", "properties": {"itens": {"type": "array", "items": resumo_schema()},
            "naoEncontrados": {"type": "array", "items": {"type": "integer"}}}}),
        ),
    )
}

/// What the full view needs beyond the portador, read on `r`.
pub async fn extras(ctx: &Ctx, r: &mut Records<'_>, p: &Portador) -> Result<Extras, ApiError> {
    let mut dependents = Vec::new();
    for (link, card) in &p.dependents {
        dependents.push((r.customer(link.dependent_id).await?, card.clone()));
    }
    let holder = match p.role {
        super::common::Role::Adicional { holder } => holder,
        super::common::Role::Titular => p.customer.id,
    };
    Ok(Extras {
        created: Some(Date::from_unix_ms(
            r.customer_created_ms(p.customer.id).await?,
        )),
        dependents,
        delinquencies: r.delinquencies(holder).await?,
        references: r.references_of(p.customer.id).await?,
        pin_tries: None,
        product: p
            .main_account()
            .and_then(|a| product_of(&ctx.app, a, &p.cards))
            .cloned(),
        kinship: r.kinship_degrees().await?,
        block_types: r.block_types().await?,
    })
}

/// The full view of a portador: records read on the read pool, then the main card's
/// PIN tries from the daemon (no connection held meanwhile).
async fn full_view(ctx: &Ctx, p: Portador, mut x: Extras) -> Result<Reply, ApiError> {
    if let Some(card) = p
        .main_card()
        .filter(|c| c.pin_status == PinStatus::Active && !c.status.is_final())
    {
        let tries = ctx.app.hsm.pin_attempts(&hsm_card(card)).await?;
        x.pin_tries = Some(tries.u32(Tag::Attempts).unwrap_or(0));
    }
    Reply::ok(visao::completo(&p, &x, today_date()))
}

async fn get_one(ctx: Ctx) -> Result<Reply, ApiError> {
    let (p, x) = {
        let mut reader = ctx.reader().await?;
        let mut r = reader.records();
        let p = from_path(&ctx, &mut r).await?;
        let x = extras(&ctx, &mut r, &p).await?;
        (p, x)
    };
    full_view(&ctx, p, x).await
}

async fn info(ctx: Ctx) -> Result<Reply, ApiError> {
    get_one(ctx).await
}

fn query_cpf(ctx: &Ctx, name: &str) -> Result<crate::api::domain::br::Cpf, ApiError> {
    let mut chk = Checks::new();
    let cpf = check_cpf(
        &mut chk,
        name,
        &Field::Value(ctx.query(name).unwrap_or("").to_owned()),
        true,
    );
    chk.finish()?;
    cpf.ok_or_else(not_found)
}

fn query_cnpj(ctx: &Ctx) -> Result<Cnpj, ApiError> {
    let mut chk = Checks::new();
    let text = chk.text(
        "cnpj",
        &Field::Value(ctx.query("cnpj").unwrap_or("").to_owned()),
        true,
        Text::printable(18),
    );
    let cnpj = text.and_then(|t| {
        Cnpj::parse(&t)
            .map_err(|_| {
                chk.fail(
                    "cnpj",
                    "check_digits",
                    "CNPJ com dígitos verificadores inválidos",
                )
            })
            .ok()
    });
    chk.finish()?;
    cnpj.ok_or_else(not_found)
}

async fn completo(ctx: Ctx) -> Result<Reply, ApiError> {
    let cpf = query_cpf(&ctx, "cpf")?;
    let (p, x) = {
        let mut reader = ctx.reader().await?;
        let mut r = reader.records();
        let p = titular_by_cpf(&mut r, &cpf).await?.ok_or_else(not_found)?;
        let x = extras(&ctx, &mut r, &p).await?;
        (p, x)
    };
    full_view(&ctx, p, x).await
}

async fn simplificado(ctx: Ctx) -> Result<Reply, ApiError> {
    let cpf = query_cpf(&ctx, "cpf")?;
    let mut reader = ctx.reader().await?;
    let p = titular_by_cpf(&mut reader.records(), &cpf)
        .await?
        .ok_or_else(not_found)?;
    Reply::ok(visao::resumo(&p))
}

async fn account_list(ctx: &Ctx, r: &mut Records<'_>, ids: Vec<i64>) -> Result<Reply, ApiError> {
    let mut items = Vec::new();
    for id in ids {
        let p = load(r, id).await?;
        items.extend(visao::contas(&p, |a| {
            product_of(&ctx.app, a, &p.cards).and_then(|pr| pr.name.clone())
        }));
    }
    Reply::ok(Value::Array(items))
}

async fn contas(ctx: Ctx) -> Result<Reply, ApiError> {
    let doc = match (ctx.query("cpf"), ctx.query("cnpj")) {
        (Some(_), None) => query_cpf(&ctx, "cpf")?.as_str().to_owned(),
        (None, Some(_)) => query_cnpj(&ctx)?.as_str().to_owned(),
        _ => {
            let mut chk = Checks::new();
            chk.fail("cpf", "one_of", "informe cpf ou cnpj (um dos dois)");
            chk.finish()?;
            return Err(not_found());
        }
    };
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let mut ids = r.portadores_by_document(&doc).await?;
    if ids.is_empty() {
        ids = r.account_holders_by_document(&doc).await?;
    }
    account_list(&ctx, &mut r, ids).await
}

async fn by_cnpj(ctx: Ctx) -> Result<Reply, ApiError> {
    let cnpj = query_cnpj(&ctx)?;
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let ids = r.portadores_by_document(cnpj.as_str()).await?;
    account_list(&ctx, &mut r, ids).await
}

async fn by_rg(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut chk = Checks::new();
    let rg = chk.text(
        "rg",
        &Field::Value(ctx.query("rg").unwrap_or("").to_owned()),
        true,
        Text {
            min: 1,
            max: 20,
            chars: super::input::Chars::Alphanumeric,
        },
    );
    chk.finish()?;
    let rg = rg.ok_or_else(not_found)?;
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let ids = r.portadores_by_rg(&rg).await?;
    account_list(&ctx, &mut r, ids).await
}

fn page_limit(chk: &mut Checks, ctx: &Ctx) -> i64 {
    match ctx.query("limite") {
        None => 20,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                chk.fail("limite", "out_of_range", "de 1 a 100");
                20
            }
        },
    }
}

async fn nomes(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut chk = Checks::new();
    let term: String = br::fold(ctx.query("nome").unwrap_or(""))
        .chars()
        .filter(|c| !matches!(c, '%' | '_' | '\\'))
        .collect();
    let n = term.chars().count();
    if !(2..=100).contains(&n) || term.chars().any(char::is_control) {
        chk.fail("nome", "invalid_length", "de 2 a 100 caracteres");
    }
    let limit = page_limit(&mut chk, &ctx);
    let cursor = match ctx.query("cursor") {
        None | Some("") => 0,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .unwrap_or_else(|| {
                chk.fail(
                    "cursor",
                    "invalid_cursor",
                    "o proximoCursor da página anterior",
                );
                0
            }),
    };
    chk.finish()?;
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let ids = r.portadores_by_name(&term, cursor, limit + 1).await?;
    let page = usize::try_from(limit).unwrap_or(20);
    let mut items = Vec::new();
    for id in ids.iter().take(page) {
        items.push(visao::resumo(&load(&mut r, *id).await?));
    }
    let next = (ids.len() > page)
        .then(|| items.last().map(|v| v["id"].to_string()))
        .flatten();
    Reply::ok(json!({"itens": items, "proximoCursor": next}))
}

async fn lote(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut chk = Checks::new();
    let raw = ctx.query("ids").unwrap_or("");
    let ids: Vec<i64> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse::<i64>().ok().filter(|n| *n >= 0))
        .collect();
    let given = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .count();
    if given != ids.len() {
        chk.fail("ids", "invalid_id", "ids numéricos separados por vírgula");
    } else if ids.is_empty() || ids.len() > 100 {
        chk.fail("ids", "count", "de 1 a 100 ids");
    }
    chk.finish()?;
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let mut items = Vec::new();
    let mut missing = Vec::new();
    for id in ids {
        match load(&mut r, id).await {
            Ok(p) => items.push(visao::resumo(&p)),
            Err(e) if e.code == "portador_not_found" => missing.push(id),
            Err(e) => return Err(e),
        }
    }
    Reply::ok(json!({"itens": items, "naoEncontrados": missing}))
}
