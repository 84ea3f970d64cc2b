//! Lookups: `GET /api/v1/portadores/{idPortador}`, `/{idPortador}/informacoes`,
//! `/contas?cpf=|cnpj=`, `/rg?rg=`, `/completo/cpf?cpf=`, `/simplificado/cpf?cpf=`,
//! `/nomes?nome=` (accent- and case-insensitive, cursor pagination: `limite` 1-100,
//! default 20, and `cursor` from the previous page's `proximoCursor`), `/cnpj?cnpj=`,
//! `/lote?ids=1,2,3` (at most 100). Every lookup sees only the caller's tenant.
//!
//! cofre keeps no transactions yet, so the full view reports what it has honestly: the
//! limit from the account, available balance equal to the limit, zero balances and
//! invoices, the cycle from the account's due day, and the product with its charges
//! (zero: none are configured).

use crate::api::domain::CardStatus;
use crate::api::store::Records;
use axum::http::Method;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::br::{self, field_error};
use super::common::{Portador, load};
use super::referencias::{operation, path_id};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::issuing::product_of;
use crate::api::issuing::{card_number, today};
use crate::handler_tx;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    let r = |path, doc, h| Route::own(Method::GET, path, doc, h);
    vec![
        r(
            "/api/v1/portadores/{idPortador}",
            doc_get,
            handler_tx!(get_one),
        ),
        r(
            "/api/v1/portadores/{idPortador}/informacoes",
            doc_info,
            handler_tx!(info),
        ),
        r("/api/v1/portadores/contas", doc_contas, handler_tx!(contas)),
        r("/api/v1/portadores/rg", doc_rg, handler_tx!(by_rg)),
        r(
            "/api/v1/portadores/completo/cpf",
            doc_completo,
            handler_tx!(completo),
        ),
        r(
            "/api/v1/portadores/simplificado/cpf",
            doc_simplificado,
            handler_tx!(simplificado),
        ),
        r("/api/v1/portadores/nomes", doc_nomes, handler_tx!(nomes)),
        r("/api/v1/portadores/cnpj", doc_cnpj, handler_tx!(by_cnpj)),
        r("/api/v1/portadores/lote", doc_lote, handler_tx!(lote)),
    ]
}

fn resumo_schema() -> Value {
    json!({"type": "object", "required": ["id", "nome"], "properties": {
        "id": {"type": "integer"}, "nome": {"type": "string"}, "cpf": {"type": "string"},
        "cnpj": {"type": "string"}, "rg": {"type": "string"}, "email": {"type": "string"},
        "cartao": {"type": "string"}, "numeroCartaoTruncado": {"type": "string"},
        "clienteDataNascimento": {"type": "string"}, "statusCliente": {"type": "string"},
        "statusCartao": {"type": "string"}, "idLoja": {"type": "string"}
    }})
}

fn list_schema() -> Value {
    json!({"type": "array", "items": resumo_schema()})
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
        "Dados do portador",
        &[path_id()],
        None,
        ("200", resumo_schema()),
    )
}
fn doc_info() -> Value {
    operation(
        "Informações completas do portador: saldos, limites, faturas, ciclo, produto e encargos, dependentes, endereços, status",
        &[path_id()],
        None,
        ("200", json!({"type": "object"})),
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
        "Informações completas do portador pelo CPF",
        &[("cpf", "query", true, "CPF")],
        None,
        ("200", json!({"type": "object"})),
    )
}
fn doc_simplificado() -> Value {
    operation(
        "Principais informações do portador pelo CPF",
        &[("cpf", "query", true, "CPF")],
        None,
        ("200", resumo_schema()),
    )
}
fn doc_nomes() -> Value {
    operation(
        "Portadores pelo nome (sem distinção de acentos e maiúsculas), paginado",
        &[
            ("nome", "query", true, "Parte do nome, 2 a 100 caracteres"),
            ("limite", "query", false, "Itens por página, 1-100 (20)"),
            ("cursor", "query", false, "proximoCursor da página anterior"),
        ],
        None,
        (
            "200",
            json!({"type": "object", "required": ["itens"], "properties": {
            "itens": list_schema(), "proximoCursor": {"type": "string", "nullable": true}}}),
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
        "Informações de vários portadores (até 100 ids separados por vírgula)",
        &[("ids", "query", true, "ids")],
        None,
        (
            "200",
            json!({"type": "object", "properties": {"itens": list_schema(),
            "naoEncontrados": {"type": "array", "items": {"type": "integer"}}}}),
        ),
    )
}

fn document_of(p: &Portador) -> (&'static str, String) {
    let doc = p.customer.document.split_once(':').map_or("", |(_, d)| d);
    let digits = doc.split('@').next().unwrap_or("").to_owned();
    if p.customer.document.starts_with("PJ:") {
        ("cnpj", digits)
    } else {
        ("cpf", digits)
    }
}

fn status_name(s: &str) -> String {
    match s {
        "active" => "ATIVO",
        "blocked" => "BLOQUEADO",
        "inactive" => "INATIVO",
        "lost" => "PERDIDO",
        "stolen" => "ROUBADO",
        "cancelled" => "CANCELADO",
        "replaced" => "SUBSTITUIDO",
        _ => "OUTRO",
    }
    .to_owned()
}

/// The short view of a portador.
pub(super) fn resumo(p: &Portador) -> Value {
    let b = &p.customer.body;
    let (kind, doc) = document_of(p);
    let card = p
        .cards
        .iter()
        .rev()
        .find(|c| c.status != CardStatus::Replaced)
        .or(p.cards.last());
    let mut v = json!({
        "id": p.customer.id,
        "nome": p.customer.name,
        "idLoja": p.customer.tenant,
        "statusCliente": status_name(&p.customer.status),
    });
    v[kind] = json!(doc);
    for (from, to) in [
        ("email", "email"),
        ("dataNascimento", "clienteDataNascimento"),
    ] {
        if let Some(s) = b.get(from).and_then(Value::as_str) {
            v[to] = json!(s);
        }
    }
    match b.get("rg") {
        Some(Value::String(s)) => v["rg"] = json!(s),
        Some(Value::Object(o)) => v["rg"] = o.get("rg").cloned().unwrap_or(Value::Null),
        _ => {}
    }
    if let Some(c) = card {
        v["cartao"] = json!(card_number(c));
        v["numeroCartaoTruncado"] = json!(c.masked_pan.replace('*', "X"));
        v["statusCartao"] = json!(status_name(c.status.as_str()));
    }
    v
}

fn next_due(day: i64) -> ((i64, u32, u32), (i64, u32, u32)) {
    let t = today();
    let (y, m, d) = br::parse_date(&t).unwrap_or((2026, 1, 1));
    let day = u32::try_from(day.clamp(1, 28)).unwrap_or(10);
    let (ny, nm) = if d < day {
        (y, m)
    } else if m == 12 {
        (y + 1, 1)
    } else {
        (y, m + 1)
    };
    let due = (ny, nm, day);
    // The invoice closes 10 days before it is due.
    let close = br::civil_from_days(br::days_from_civil(ny, nm, day) - 10);
    (due, close)
}

/// The billing cycle of a portador's first account.
pub(super) fn ciclo(p: &Portador) -> Value {
    let Some(a) = p.accounts.first() else {
        return Value::Null;
    };
    let (due, close) = next_due(a.cycle_day);
    json!({
        "id": a.id,
        "diaVencimento": a.cycle_day,
        "diaCorte": close.2,
        "melhorDiaCompra": (close.2 % 28) + 1,
        "descricao": format!("Vencimento dia {}", a.cycle_day),
        "ativo": "S",
        "diasCarencia": 0,
        "dataFechamentoProxFatura": br::format_date(close),
        "dataVencimentoProxFatura": br::format_date(due),
    })
}

/// The full view.
pub(super) async fn informacoes(
    ctx: &Ctx,
    r: &mut Records<'_>,
    p: &Portador,
) -> Result<Value, ApiError> {
    let mut v = resumo(p);
    let limit = p.accounts.first().map_or(0, |a| a.credit_limit);
    let money = br::money_json;
    v["extratoClienteResponse"] = json!({
        "limite": money(limit), "saldoDisponivel": money(limit), "saldoReservado": 0,
        "saldoParceladoDisp": 0, "limiteParcelado": 0, "devedorTotal": 0,
        "utilizaLimiteExtra": false, "valorLimiteExtra": 0, "limiteExtraTotal": 0,
        "saldoDisponivelExtra": 0, "valorFaturaFechada": 0, "clienteEmBloqueioJuridico": false
    });
    let c = ciclo(p);
    v["ciclo"] = c.clone();
    v["faturaFechada"] = Value::Null;
    v["faturaFutura"] = json!({"dataVencimento": c["dataVencimentoProxFatura"], "valorTotal": 0});
    v["dataFechamentoProxFatura"] = c["dataFechamentoProxFatura"].clone();
    v["valorLancamentosFuturos"] = json!(0);
    v["boletos"] = json!([]);
    let product = p.accounts.first().and_then(|a| product_of(&ctx.app, a));
    v["produto"] = json!({
        "id": product.map_or(0, |p| p.logo),
        "descricao": product.and_then(|p| p.name.clone()).unwrap_or_default(),
        "isProdutoDigital": "N",
        "encargos": {"cobrarMulta": false, "multa": 0, "mora": 0, "jurosRotativo": 0,
            "regraCalculoMulta": "", "regraCalculoMora": "",
            "ignorarMultaAnterior": false, "ignorarSaldoRolado": false, "realizarEstornoJurosPagamento": false}
    });
    let mut dependentes = Vec::new();
    for link in r.dependents_of(p.customer.id).await? {
        let dep = serde_json::to_value(&link).unwrap_or(Value::Null);
        dependentes.push(dep);
    }
    v["dependentes"] = Value::Array(dependentes);
    let b = &p.customer.body;
    v["enderecos"] = json!({
        "residencial": b.get("enderecoResidencial").cloned().unwrap_or(Value::Null),
        "comercial": b.get("enderecoComercial").cloned().unwrap_or(Value::Null),
        "alternativo": b.get("enderecoAlternativo").cloned().unwrap_or(Value::Null),
    });
    v["contas"] = contas_of(ctx, p);
    Ok(v)
}

fn contas_of(ctx: &Ctx, p: &Portador) -> Value {
    Value::Array(
        p.accounts
            .iter()
            .map(|a| {
                let card = p.cards.iter().rev().find(|c| c.account_id == a.id);
                json!({
                    "idConta": a.id, "idPortador": p.customer.id, "nome": p.customer.name,
                    "cartaoMascarado": card.map(|c| c.masked_pan.replace('*', "X")),
                    "statusConta": status_name(&a.status),
                    "statusCartao": card.map(|c| status_name(c.status.as_str())),
                    "produto": product_of(&ctx.app, a).and_then(|p| p.name.clone()).unwrap_or_else(|| a.product.clone()),
                    "limiteRotativo": br::money_json(a.credit_limit),
                })
            })
            .collect(),
    )
}

async fn get_one(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = super::common::from_path(&ctx, &mut r).await?;
    Reply::ok(resumo(&p))
}

async fn info(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = super::common::from_path(&ctx, &mut r).await?;
    Reply::ok(informacoes(&ctx, &mut r, &p).await?)
}

fn cpf_query(ctx: &Ctx) -> Result<String, ApiError> {
    ctx.query("cpf")
        .ok_or_else(|| field_error("cpf", "cpf is required"))
        .and_then(|c| br::cpf(c).ok_or_else(|| field_error("cpf", "CPF check digits do not match")))
}

async fn by_document(r: &mut Records<'_>, doc: &str) -> Result<Vec<Portador>, ApiError> {
    let mut out = Vec::new();
    for id in r.portadores_by_document(doc).await? {
        out.push(load(r, id).await?);
    }
    Ok(out)
}

async fn contas(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let doc = match (ctx.query("cpf"), ctx.query("cnpj")) {
        (Some(_), None) => cpf_query(&ctx)?,
        (None, Some(c)) => {
            br::cnpj(c).ok_or_else(|| field_error("cnpj", "CNPJ check digits do not match"))?
        }
        _ => return Err(field_error("cpf", "give exactly one of cpf or cnpj")),
    };
    let mut items = Vec::new();
    for p in by_document(&mut r, &doc).await? {
        if let Value::Array(a) = contas_of(&ctx, &p) {
            items.extend(a);
        }
    }
    Reply::ok(Value::Array(items))
}

async fn by_cnpj(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let doc = ctx
        .query("cnpj")
        .and_then(br::cnpj)
        .ok_or_else(|| field_error("cnpj", "CNPJ check digits do not match"))?;
    let mut items = Vec::new();
    for p in by_document(&mut r, &doc).await? {
        if let Value::Array(a) = contas_of(&ctx, &p) {
            items.extend(a);
        }
    }
    Reply::ok(Value::Array(items))
}

async fn by_rg(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let rg = ctx.query("rg").map(str::trim).unwrap_or("");
    if rg.is_empty() || rg.len() > 20 || !rg.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(field_error("rg", "rg: 1-20 letters or digits"));
    }
    let mut items = Vec::new();
    for id in r.portadores_by_rg(rg).await? {
        let p = load(&mut r, id).await?;
        if let Value::Array(a) = contas_of(&ctx, &p) {
            items.extend(a);
        }
    }
    Reply::ok(Value::Array(items))
}

async fn one_by_cpf(ctx: &Ctx, r: &mut Records<'_>) -> Result<Portador, ApiError> {
    let cpf = cpf_query(ctx)?;
    by_document(r, &cpf)
        .await?
        .into_iter()
        .next()
        .ok_or_else(super::common::not_found)
}

async fn completo(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = one_by_cpf(&ctx, &mut r).await?;
    Reply::ok(informacoes(&ctx, &mut r, &p).await?)
}

async fn simplificado(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = one_by_cpf(&ctx, &mut r).await?;
    Reply::ok(resumo(&p))
}

async fn nomes(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let term: String = br::fold(ctx.query("nome").unwrap_or(""))
        .chars()
        .filter(|c| *c != '%' && *c != '_' && *c != '\\')
        .collect();
    if term.chars().count() < 2 || term.chars().count() > 100 {
        return Err(field_error("nome", "nome: 2-100 characters"));
    }
    let limit = match ctx.query("limite") {
        None => 20,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| field_error("limite", "limite: 1-100"))?,
    };
    let cursor = match ctx.query("cursor") {
        None | Some("") => 0,
        Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            field_error("cursor", "cursor: the proximoCursor of the previous page")
        })?,
    };
    let ids = r.portadores_by_name(&term, cursor, limit + 1).await?;
    let more = ids.len() > usize::try_from(limit).unwrap_or(20);
    let mut items = Vec::new();
    for id in ids.iter().take(usize::try_from(limit).unwrap_or(20)) {
        items.push(resumo(&load(&mut r, *id).await?));
    }
    let next = more
        .then(|| items.last().map(|v| v["id"].to_string()))
        .flatten();
    Reply::ok(json!({"itens": items, "proximoCursor": next}))
}

async fn lote(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let raw = ctx.query("ids").unwrap_or("");
    let ids: Vec<i64> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| field_error("ids", "ids: numbers separated by commas"))
        })
        .collect::<Result<_, _>>()?;
    if ids.is_empty() || ids.len() > 100 {
        return Err(field_error("ids", "ids: 1-100 ids"));
    }
    let mut items = Vec::new();
    let mut missing = Vec::new();
    for id in ids {
        match load(&mut r, id).await {
            Ok(p) => items.push(resumo(&p)),
            Err(e) if e.code == "portador_not_found" => missing.push(id),
            Err(e) => return Err(e),
        }
    }
    Reply::ok(json!({"itens": items, "naoEncontrados": missing}))
}
