//! A portador's history: `GET /api/v1/portadores/{idPortador}/historico` and
//! `.../ocorrencias?inicio=&fim=`.
//!
//! Choices where the document is silent:
//! * `historico` lists the record history (the portador, its accounts and its cards)
//!   newest first, `limite` rows (1-100, default 20) per page; `proximoCursor` (absent
//!   on the last page) is passed as `cursor`. Each item is `{entidade: PORTADOR | CONTA
//!   | CARTAO, idEntidade, acao, usuario, data, alteracoes: [{campo, antes, depois}]}`
//!   in the document's field names and status words (no internal column, token or
//!   tenant); an event without a change (a refused PIN) carries `detalhe`.
//! * `inadimplencias`: see `inadimplencias` (the billing system's feed).
//! * `ocorrencias`: `inicio` and `fim` are `YYYY-MM-DD` (UTC days, both included);
//!   without `inicio` from the first, without `fim` up to today; `inicio` after `fim` is
//!   422.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::Method;
use serde_json::{Map, Value, json};

use super::common::{card_status_word, from_path, record_status_word};
use super::input::Checks;
use super::referencias::{operation, path_id, route};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::{CardStatus, Date, Money};
use crate::api::store::HistoryRow;
use crate::handler;

const DAY_MS: i64 = 86_400_000;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/api/v1/portadores/{idPortador}/historico",
            doc_history,
            handler!(history),
        ),
        route(
            Method::GET,
            "/api/v1/portadores/{idPortador}/ocorrencias",
            doc_occurrences,
            handler!(occurrences),
        ),
    ]
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
            ("limite", "query", false, "Itens por página, 1-100 (20)"),
            ("cursor", "query", false, "proximoCursor da página anterior"),
        ],
        None,
        (
            "200",
            json!({"type": "object", "required": ["itens"], "properties": {
                "itens": {"type": "array", "items": {"type": "object", "properties": {
                    "entidade": {"type": "string", "enum": ["PORTADOR", "CONTA", "CARTAO"]}, "idEntidade": {"type": "integer"},
                    "acao": {"type": "string"}, "usuario": {"type": "string"},
                    "data": {"type": "string", "format": "date-time"},
                    "alteracoes": {"type": "array", "items": {"type": "object"}}, "detalhe": {"type": "object"}}}},
                "proximoCursor": {"type": "string"}
            }}),
        ),
    )
}

fn doc_occurrences() -> Value {
    operation(
        "Lista as ocorrências da conta de um portador num determinado período",
        &[
            path_id(),
            ("inicio", "query", false, "Primeiro dia, AAAA-MM-DD"),
            ("fim", "query", false, "Último dia, AAAA-MM-DD"),
        ],
        None,
        (
            "200",
            json!({"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "tipo": {"type": "string"}, "detalhe": {"type": "string"},
            "usuario": {"type": "string"}, "data": {"type": "string", "format": "date-time"}}}}),
        ),
    )
}

fn money_of(v: &Value) -> Value {
    v.as_i64()
        .map_or(Value::Null, |n| Money::from_minor(n).to_json())
}

/// A history row's record in the document's names (no internal column).
fn public(entity: &str, v: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |k: &str, val: Value| {
        if !val.is_null() {
            out.insert(k.to_owned(), val);
        }
    };
    match entity {
        "customer" => {
            put("nome", v["name"].clone());
            put(
                "statusCliente",
                v["status"]
                    .as_str()
                    .map_or(Value::Null, |s| json!(record_status_word(s))),
            );
            if let Some(body) = v["body"].as_object() {
                for (k, val) in body {
                    if !matches!(k.as_str(), "titular" | "origem") {
                        put(k, val.clone());
                    }
                }
            }
        }
        "account" => {
            put("limiteRotativo", money_of(&v["credit_limit"]));
            put("diaVencimento", v["cycle_day"].clone());
            put("produto", v["product"].clone());
            put(
                "statusConta",
                v["status"]
                    .as_str()
                    .map_or(Value::Null, |s| json!(record_status_word(s))),
            );
            for k in ["limiteParcelado", "limiteSaque", "classificacao"] {
                put(k, v["body"][k].clone());
            }
        }
        _ => {
            let status = v["status"].as_str().and_then(|s| CardStatus::parse(s).ok());
            put(
                "statusCartao",
                status.map_or(Value::Null, |s| json!(card_status_word(s))),
            );
            put("codigoBloqueio", v["block_code"].clone());
            put(
                "cartaoMascarado",
                v["masked_pan"]
                    .as_str()
                    .map_or(Value::Null, |m| json!(m.replace('*', "X"))),
            );
            put("limite", money_of(&v["credit_limit"]));
            put(
                "statusSenha",
                v["pin_status"].as_str().map_or(Value::Null, |s| {
                    json!(if s == "blocked" { "BLOQUEADA" } else { "ATIVA" })
                }),
            );
            put(
                "cvvDinamico",
                v["dcvv2"]
                    .as_str()
                    .map_or(Value::Null, |s| json!(if s == "on" { "S" } else { "N" })),
            );
            put("idCartaoSubstituto", v["replaced_by"].clone());
            put("validade", v["expiry"].clone());
        }
    }
    out
}

fn action_word(action: &str) -> String {
    match action {
        "create" => "CRIACAO",
        "create-reissue" => "EMISSAO_SUBSTITUTO",
        "portador_update" => "ALTERACAO_CADASTRO",
        "limits" => "ALTERACAO_LIMITES",
        "product" => "ALTERACAO_PRODUTO",
        "senha" => "ALTERACAO_SENHA",
        "substituido" => "SUBSTITUICAO",
        "pin_refused" => "SENHA_RECUSADA",
        other => return other.to_ascii_uppercase().replace('-', "_"),
    }
    .to_owned()
}

/// One history row as the API shows it.
pub fn history_item(h: &HistoryRow) -> Value {
    let entity = match h.entity.as_str() {
        "customer" => "PORTADOR",
        "account" => "CONTA",
        _ => "CARTAO",
    };
    let mut item = json!({"entidade": entity, "idEntidade": h.entity_id, "acao": action_word(&h.action),
        "usuario": h.actor, "data": rfc3339(h.at_ms)});
    let record_shaped = |v: &Option<Value>| v.as_ref().is_some_and(|v| v.get("status").is_some());
    if !record_shaped(&h.before) && !record_shaped(&h.after) {
        let detail: Map<String, Value> = h
            .after
            .as_ref()
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| matches!(k.as_str(), "code" | "channel" | "reason"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        item["alteracoes"] = json!([]);
        item["detalhe"] = Value::Object(detail);
        return item;
    }
    let before = h
        .before
        .as_ref()
        .map(|v| public(&h.entity, v))
        .unwrap_or_default();
    let after = h
        .after
        .as_ref()
        .map(|v| public(&h.entity, v))
        .unwrap_or_default();
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let changes: Vec<Value> = keys
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| json!({"campo": k, "antes": before.get(k), "depois": after.get(k)}))
        .collect();
    item["alteracoes"] = json!(changes);
    item
}

fn parse_cursor(text: &str) -> Option<(i64, i64)> {
    let (a, b) = text.split_once('_')?;
    let ok = |s: &str| {
        !s.is_empty() && s.len() <= 19 && s.bytes().all(|c| c.is_ascii_digit() || c == b'-')
    };
    if !ok(a) || !ok(b) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

async fn history(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut chk = Checks::new();
    let limit = match ctx.query("limite") {
        None => 20,
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .unwrap_or_else(|| {
                chk.fail("limite", "out_of_range", "de 1 a 100");
                20
            }),
    };
    let after = match ctx.query("cursor") {
        None | Some("") => None,
        Some(t) => parse_cursor(t).or_else(|| {
            chk.fail(
                "cursor",
                "invalid_cursor",
                "o proximoCursor da página anterior",
            );
            None
        }),
    };
    chk.finish()?;
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let p = from_path(&ctx, &mut r).await?;
    let mut entities = vec![("customer", p.customer.id)];
    if p.is_titular() {
        entities.extend(p.accounts.iter().map(|a| ("account", a.id)));
    }
    entities.extend(p.cards.iter().map(|c| ("card", c.id)));
    let mut rows = r.history_page(&entities, after, limit + 1).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = rows
        .last()
        .filter(|_| more)
        .map(|h| format!("{}_{}", h.at_ms, h.id));
    let mut out = json!({"itens": rows.iter().map(history_item).collect::<Vec<_>>()});
    if let Some(n) = next {
        out["proximoCursor"] = json!(n);
    }
    Reply::ok(out)
}

fn day_param(ctx: &Ctx, chk: &mut Checks, name: &str) -> Option<i64> {
    match ctx.query(name) {
        None | Some("") => None,
        Some(t) => match Date::parse(t) {
            Ok(d) => Some(d.days_since_epoch()),
            Err(_) => {
                chk.fail(name, "invalid_date", "uma data AAAA-MM-DD que exista");
                None
            }
        },
    }
}

async fn occurrences(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut chk = Checks::new();
    let from = day_param(&ctx, &mut chk, "inicio");
    let to = day_param(&ctx, &mut chk, "fim");
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        chk.fail("inicio", "invalid_period", "inicio depois de fim");
    }
    chk.finish()?;
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let p = from_path(&ctx, &mut r).await?;
    let from_ms = from.map_or(0, |d| d.saturating_mul(DAY_MS));
    let to_ms = to.map_or(i64::MAX, |d| d.saturating_add(1).saturating_mul(DAY_MS));
    let rows = r.occurrences(p.customer.id, from_ms, to_ms).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|o| json!({"id": o.id, "tipo": o.kind, "detalhe": o.detail, "usuario": o.actor, "data": rfc3339(o.at_ms)}))
        .collect();
    Reply::ok(Value::Array(items))
}
