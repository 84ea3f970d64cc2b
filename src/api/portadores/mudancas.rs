//! Changes: `PATCH /api/v1/portadores/{idPortador}` (partial update: `nomeSocial`,
//! `estadoCivil`, `conjuge`, `pep`, `estrangeiro`, addresses, ...; each present field is
//! validated and merged into the record, with a history row), `PATCH
//! /{idPortador}/limites` (`limiteRotativo`, `limiteParcelado`, `limiteSaque` in exact
//! reais; every change is written to the limit history), `GET /{idPortador}/limites/historico`,
//! `GET /{idPortador}/ciclo`, `PATCH /api/v1/portadores/produto` (`{idPortador,
//! idProduto}`: the product of the portador's account).

use axum::http::Method;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::br::{self, field_error};
use super::busca::ciclo;
use super::cadastro::{check_address, check_date, check_money, product_for, text};
use super::common::{from_path, load, parse_id};
use super::referencias::{operation, path_id};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::customers::merge;
use crate::api::issuing::product_code;
use crate::handler_tx;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::own(
            Method::PATCH,
            "/api/v1/portadores/{idPortador}",
            doc_patch,
            handler_tx!(patch),
        ),
        Route::own(
            Method::PATCH,
            "/api/v1/portadores/{idPortador}/limites",
            doc_limites,
            handler_tx!(limites),
        ),
        Route::own(
            Method::GET,
            "/api/v1/portadores/{idPortador}/limites/historico",
            doc_hist,
            handler_tx!(limites_historico),
        ),
        Route::own(
            Method::GET,
            "/api/v1/portadores/{idPortador}/ciclo",
            doc_ciclo,
            handler_tx!(get_ciclo),
        ),
        Route::own(
            Method::PATCH,
            "/api/v1/portadores/produto",
            doc_produto,
            handler_tx!(produto),
        ),
    ]
}

fn doc_patch() -> Value {
    operation(
        "Altera os dados do portador (atualização parcial)",
        &[path_id()],
        Some(json!({"type": "object", "properties": {
            "nome": {"type": "string"}, "nomeSocial": {"type": "string"}, "email": {"type": "string"},
            "nacionalidade": {"type": "string"}, "cidadeNatal": {"type": "string"}, "estadoNatal": {"type": "string"},
            "enderecoResidencial": {"type": "object"}, "enderecoComercial": {"type": "object"},
            "enderecoAlternativo": {"type": "object"}, "sexo": {"type": "string"}, "nomePai": {"type": "string"},
            "nomeMae": {"type": "string"}, "renda": {"type": "object"}, "estadoCivil": {"type": "string"},
            "rg": {"type": "object"}, "conjuge": {"type": "object"}, "pep": {"type": "object"},
            "estrangeiro": {"type": "object"}, "dataNascimento": {"type": "string", "format": "date"}
        }})),
        ("200", json!({"type": "object"})),
    )
}
fn doc_limites() -> Value {
    operation(
        "Altera os limites de crédito de um portador",
        &[path_id()],
        Some(json!({"type": "object", "properties": {
            "limiteRotativo": {"type": "number"}, "limiteParcelado": {"type": "number"}, "limiteSaque": {"type": "number"}}})),
        ("200", json!({"type": "object"})),
    )
}
fn doc_hist() -> Value {
    operation(
        "Lista o histórico de limites do portador",
        &[path_id()],
        None,
        (
            "200",
            json!({"type": "array", "items": {"type": "object", "properties": {
            "idConta": {"type": "integer"}, "limite": {"type": "string"}, "valorAnterior": {"type": "number"},
            "valorNovo": {"type": "number"}, "usuario": {"type": "string"}, "dataHora": {"type": "string"}}}}),
        ),
    )
}
fn doc_ciclo() -> Value {
    operation(
        "Consulta o ciclo de fatura do portador",
        &[path_id()],
        None,
        ("200", json!({"type": "object"})),
    )
}
fn doc_produto() -> Value {
    operation(
        "Altera o produto vinculado a um portador",
        &[],
        Some(
            json!({"type": "object", "required": ["idPortador", "idProduto"], "properties": {
            "idPortador": {"type": "integer"}, "idProduto": {"type": "integer"}}}),
        ),
        ("200", json!({"type": "object"})),
    )
}

fn check_cpf(body: &Value, key: &str, field: &str) -> Result<(), ApiError> {
    if let Some(c) = text(body, key, field)?
        && !br::valid_cpf(c)
    {
        return Err(field_error(field, "CPF check digits do not match"));
    }
    Ok(())
}

async fn patch(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    let b = &ctx.body;
    if !b.is_object() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "a JSON object is required",
        ));
    }
    for forbidden in ["cpf", "cnpj", "idLoja"] {
        if b.get(forbidden).is_some() {
            return Err(field_error(
                forbidden,
                format!("{forbidden} cannot be changed"),
            ));
        }
    }
    if let Some(n) = text(b, "nome", "nome")?
        && (n.trim().is_empty() || n.chars().count() > 120)
    {
        return Err(field_error("nome", "nome: 1-120 characters"));
    }
    check_date(b, "dataNascimento", "dataNascimento", true)?;
    for key in [
        "enderecoResidencial",
        "enderecoComercial",
        "enderecoAlternativo",
    ] {
        check_address(b, key)?;
    }
    if let Some(uf) = text(b, "estadoNatal", "estadoNatal")?
        && !br::valid_uf(uf)
    {
        return Err(field_error("estadoNatal", "UF must be one of the 27 units"));
    }
    check_money(b, "renda", "renda.valor")?;
    for (key, field) in [("conjuge", "conjuge"), ("pep", "pep")] {
        if let Some(o) = b.get(key).filter(|v| !v.is_null()) {
            if !o.is_object() {
                return Err(field_error(field, format!("{field} must be an object")));
            }
            check_cpf(o, "cpf", &format!("{field}.cpf"))?;
        }
    }
    if let Some(c) = b.get("conjuge").filter(|v| v.is_object()) {
        check_date(c, "dataNascimento", "conjuge.dataNascimento", true)?;
        check_money(c, "salario", "conjuge.salario")?;
    }
    if let Some(rg) = b.get("rg").filter(|v| v.is_object()) {
        check_date(rg, "dataEmissao", "rg.dataEmissao", true)?;
        if let Some(uf) = text(rg, "unidadeFederativa", "rg.unidadeFederativa")?
            && !br::valid_uf(uf)
        {
            return Err(field_error(
                "rg.unidadeFederativa",
                "UF must be one of the 27 units",
            ));
        }
    }
    let new_name = text(b, "nome", "nome")?.map(|n| n.trim().to_owned());
    let patch = b.clone();
    let updated = r
        .update_customer(p.customer.id, "portador_update", |c| {
            merge(&mut c.body, &patch);
            if let Some(n) = new_name {
                c.name = n;
            }
        })
        .await?;
    let doc = updated.document.split_once(':').map_or("", |(_, d)| d);
    let documento = doc.split('@').next().unwrap_or("");
    let tipo = if updated.document.starts_with("PJ:") {
        "PJ"
    } else {
        "PF"
    };
    let rg = match updated.body.get("rg") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o.get("rg").and_then(Value::as_str).unwrap_or("").to_owned(),
        _ => String::new(),
    };
    r.index_portador(updated.id, tipo, documento, &rg, &br::fold(&updated.name))
        .await?;
    let p = load(&mut r, updated.id).await?;
    Reply::ok(super::busca::resumo(&p))
}

async fn limites(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    let b = &ctx.body;
    let account = p
        .accounts
        .first()
        .ok_or_else(|| ApiError::unprocessable("no_account", "the portador has no account"))?;
    let rotativo = check_money(b, "limiteRotativo", "limiteRotativo")?;
    let parcelado = check_money(b, "limiteParcelado", "limiteParcelado")?;
    let saque = check_money(b, "limiteSaque", "limiteSaque")?;
    if rotativo.is_none() && parcelado.is_none() && saque.is_none() {
        return Err(field_error(
            "limiteRotativo",
            "give at least one of limiteRotativo, limiteParcelado, limiteSaque",
        ));
    }
    let before_of = |key: &str| account.body.get(key).and_then(br::parse_money).unwrap_or(0);
    let mut changes = Vec::new();
    if let Some(v) = rotativo {
        changes.push(("limiteRotativo", account.credit_limit, v));
    }
    if let Some(v) = parcelado {
        changes.push(("limiteParcelado", before_of("limiteParcelado"), v));
    }
    if let Some(v) = saque {
        changes.push(("limiteSaque", before_of("limiteSaque"), v));
    }
    let to_store = changes.clone();
    let updated = r
        .update_account(account.id, "limits", |a| {
            for (kind, _, after) in &to_store {
                if *kind == "limiteRotativo" {
                    a.credit_limit = *after;
                } else if let Some(o) = a.body.as_object_mut() {
                    o.insert((*kind).to_owned(), br::money_json(*after));
                }
            }
        })
        .await?;
    for (kind, before, after) in changes {
        if before != after {
            r.record_limit_change(p.customer.id, account.id, kind, before, after)
                .await?;
        }
    }
    Reply::ok(json!({
        "idConta": updated.id,
        "limiteRotativo": br::money_json(updated.credit_limit),
        "limiteParcelado": updated.body.get("limiteParcelado").cloned().unwrap_or(json!(0)),
        "limiteSaque": updated.body.get("limiteSaque").cloned().unwrap_or(json!(0)),
    }))
}

async fn limites_historico(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    let rows = r.limit_history(p.customer.id).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "idConta": r.account_id, "limite": r.kind,
                "valorAnterior": br::money_json(r.before_cents), "valorNovo": br::money_json(r.after_cents),
                "usuario": r.actor,
                "dataHora": humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(r.at_ms).unwrap_or(0))).to_string(),
            })
        })
        .collect();
    Reply::ok(Value::Array(items))
}

async fn get_ciclo(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    let c = ciclo(&p);
    if c.is_null() {
        return Err(ApiError::unprocessable(
            "no_account",
            "the portador has no account",
        ));
    }
    Reply::ok(c)
}

async fn produto(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let raw = match ctx.body.get("idPortador") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Err(field_error("idPortador", "idPortador is required")),
    };
    let p = load(&mut r, parse_id(&raw)?).await?;
    if ctx.body.get("idProduto").is_none_or(Value::is_null) {
        return Err(field_error("idProduto", "idProduto is required"));
    }
    let product = product_for(&ctx, "idProduto")?;
    let account = p
        .accounts
        .first()
        .ok_or_else(|| ApiError::unprocessable("no_account", "the portador has no account"))?;
    let code = product_code(&product);
    let updated = r
        .update_account(account.id, "product", |a| a.product = code)
        .await?;
    Reply::ok(json!({
        "idPortador": p.customer.id,
        "idConta": updated.id,
        "idProduto": product.logo,
        "produto": product.name.clone().unwrap_or_default(),
    }))
}
