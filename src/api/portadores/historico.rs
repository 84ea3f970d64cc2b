//! A portador's history: `GET /api/v1/portadores/{idPortador}/historico`,
//! `.../limites/historico`, `.../inadimplencias`, `.../ocorrencias?inicio=&fim=`.
//!
//! Choices where the document is silent:
//! * `historico` lists the record history rows (customer, its accounts and cards;
//!   before/after of the non-secret fields) newest first, `limite` rows (1-100, default
//!   20) per page; the answer's `proximoCursor` (absent on the last page) is passed as
//!   `cursor` for the next page. Times are RFC 3339 UTC.
//! * `inadimplencias`: cofre keeps no billing, so the list comes from the table
//!   `portador_delinquencies`, which nothing fills yet: an empty list, honestly.
//! * `ocorrencias`: `inicio` and `fim` are `YYYY-MM-DD` (UTC days, both included);
//!   without `inicio` from the first occurrence, without `fim` up to today; `inicio`
//!   after `fim` is `422 periodo_invalido`.
//! * `limites/historico`: the limit changes recorded by `PATCH .../limites`.

use sqlx::AnyConnection;
use std::time::{Duration, UNIX_EPOCH};

use axum::http::Method;
use serde_json::{Value, json};

use super::common::from_path;
use super::referencias::{operation, path_id};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::handler_tx;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::own(
            Method::GET,
            "/api/v1/portadores/{idPortador}/historico",
            doc_history,
            handler_tx!(history),
        ),
        Route::own(
            Method::GET,
            "/api/v1/portadores/{idPortador}/inadimplencias",
            doc_delinquencies,
            handler_tx!(delinquencies),
        ),
        Route::own(
            Method::GET,
            "/api/v1/portadores/{idPortador}/ocorrencias",
            doc_occurrences,
            handler_tx!(occurrences),
        ),
    ]
}

const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (see [`super::br::parse_date`]).
pub(super) fn date_days(text: &str) -> Option<i64> {
    super::br::parse_date(text).map(|(y, m, d)| super::br::days_from_civil(y, m, d))
}

/// RFC 3339 UTC of epoch milliseconds.
pub(super) fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

fn doc_history() -> Value {
    operation(
        "Lista o histórico do portador",
        &[
            path_id(),
            (
                "limite",
                "query",
                false,
                "Rows per page, 1-100 (default 20)",
            ),
            (
                "cursor",
                "query",
                false,
                "proximoCursor of the previous page",
            ),
        ],
        None,
        (
            "200",
            json!({"type": "object", "required": ["itens"], "properties": {
                "itens": {"type": "array", "items": {"type": "object", "properties": {
                    "entidade": {"type": "string"}, "idEntidade": {"type": "integer"},
                    "acao": {"type": "string"}, "usuario": {"type": "string"},
                    "data": {"type": "string", "format": "date-time"},
                    "antes": {}, "depois": {}}}},
                "proximoCursor": {"type": "string"}
            }}),
        ),
    )
}

fn doc_delinquencies() -> Value {
    operation(
        "Lista o histórico de inadimplências do portador",
        &[path_id()],
        None,
        (
            "200",
            json!({"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "integer"}, "idConta": {"type": "integer"},
                "inicio": {"type": "string"}, "fim": {"type": "string", "nullable": true},
                "diasAtraso": {"type": "integer"}, "valor": {"type": "integer"},
                "detalhe": {"type": "string"}}}}),
        ),
    )
}

fn doc_occurrences() -> Value {
    operation(
        "Lista as ocorrências da conta de um portador num determinado período",
        &[
            path_id(),
            ("inicio", "query", false, "First day, YYYY-MM-DD"),
            ("fim", "query", false, "Last day, YYYY-MM-DD"),
        ],
        None,
        (
            "200",
            json!({"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "integer"}, "tipo": {"type": "string"},
                "detalhe": {"type": "string"}, "usuario": {"type": "string"},
                "data": {"type": "string", "format": "date-time"}}}}),
        ),
    )
}

fn parse_cursor(text: &str) -> Option<(i64, i64)> {
    let (a, b) = text.split_once('_')?;
    let ok = |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|c| c.is_ascii_digit());
    if !ok(a) || !ok(b) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

async fn history(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    let limit = match ctx.query("limite") {
        None => 20,
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ApiError::unprocessable("limite_invalido", "limite: 1 to 100").field("limite")
            })?,
    };
    let after = match ctx.query("cursor") {
        None | Some("") => None,
        Some(t) => Some(parse_cursor(t).ok_or_else(|| {
            ApiError::unprocessable("cursor_invalido", "cursor: not a proximoCursor")
                .field("cursor")
        })?),
    };
    let mut entities = vec![("customer", p.customer.id)];
    entities.extend(p.accounts.iter().map(|a| ("account", a.id)));
    entities.extend(p.cards.iter().map(|c| ("card", c.id)));
    let mut rows = r.history_page(&entities, after, limit + 1).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = rows
        .last()
        .filter(|_| more)
        .map(|r| format!("{}_{}", r.at_ms, r.id));
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"entidade": r.entity, "idEntidade": r.entity_id, "acao": r.action,
                "usuario": r.actor, "data": rfc3339(r.at_ms), "antes": r.before, "depois": r.after})
        })
        .collect();
    let mut out = json!({"itens": items});
    if let Some(n) = next {
        out["proximoCursor"] = json!(n);
    }
    Reply::ok(out)
}

async fn delinquencies(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    let rows = r.delinquencies(p.customer.id).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|d| {
            json!({"id": d.id, "idConta": d.account_id, "inicio": rfc3339(d.started_ms),
                "fim": d.ended_ms.map(rfc3339), "diasAtraso": d.days_late, "valor": d.amount,
                "detalhe": d.detail})
        })
        .collect();
    Reply::ok(Value::Array(items))
}

fn day_param(ctx: &Ctx, name: &str) -> Result<Option<i64>, ApiError> {
    match ctx.query(name) {
        None | Some("") => Ok(None),
        Some(t) => date_days(t).map(Some).ok_or_else(|| {
            ApiError::unprocessable("data_invalida", format!("{name}: a date YYYY-MM-DD"))
                .field(name)
        }),
    }
}

async fn occurrences(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let from = day_param(&ctx, "inicio")?;
    let to = day_param(&ctx, "fim")?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(
            ApiError::unprocessable("periodo_invalido", "inicio is after fim").field("inicio"),
        );
    }
    let p = from_path(&ctx, &mut r).await?;
    let from_ms = from.map_or(0, |d| d.saturating_mul(DAY_MS));
    let to_ms = match to {
        Some(d) => d.saturating_add(1).saturating_mul(DAY_MS),
        None => i64::MAX,
    };
    let rows = r.occurrences(p.customer.id, from_ms, to_ms).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|o| {
            json!({"id": o.id, "tipo": o.kind, "detalhe": o.detail, "usuario": o.actor,
                "data": rfc3339(o.at_ms)})
        })
        .collect();
    Reply::ok(Value::Array(items))
}
