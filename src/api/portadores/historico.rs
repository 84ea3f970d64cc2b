//! A portador's history: `GET /api/v1/portadores/{idPortador}/historico`,
//! `.../ocorrencias?inicio=&fim=`, and delinquencies: `GET .../inadimplencias`, fed by
//! the billing system with `POST .../inadimplencias` and `PATCH
//! .../inadimplencias/{idInadimplencia}`.
//!
//! Choices where the document is silent:
//! * `historico` lists the record history (the portador, its accounts and its cards)
//!   newest first, `limite` rows (1-100, default 20) per page; `proximoCursor` (absent
//!   on the last page) is passed as `cursor`. Each item is `{entidade: PORTADOR | CONTA
//!   | CARTAO, idEntidade, acao, usuario, data, alteracoes: [{campo, antes, depois}]}`
//!   in the document's field names and status words (no internal column, token or
//!   tenant); an event without a change (a refused PIN) carries `detalhe`.
//! * `inadimplencias`: cofre keeps no billing; the issuer's billing system records a
//!   delinquency with `POST` (`{idConta?, dataInicio, diasAtraso, valor, detalhe?}`:
//!   `dataInicio` a past date, `diasAtraso` 1-3650, `valor` exact reais above 0; one
//!   open period per account, else `409 delinquency_open`) and updates or closes it
//!   with `PATCH` (`{diasAtraso?, valor?, dataFim?}`; a closed period is `409
//!   delinquency_closed`). Open periods show in the views (`estaEmAtraso`,
//!   `diasAtrasoTotal`, `estanoCobranca`, `devedorTotal`).
//! * `ocorrencias`: `inicio` and `fim` are `YYYY-MM-DD` (UTC days, both included);
//!   without `inicio` from the first, without `fim` up to today; `inicio` after `fim` is
//!   422.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::common::{Role, card_status_word, from_path, not_the_portadors, record_status_word};
use super::input::{self, Checks, Field, IdText, Text};
use super::pessoa::{check_money, check_past_date};
use super::referencias::{operation, path_id, route};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::{CardStatus, Date, Money};
use crate::api::issuing::today_date;
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
            "/api/v1/portadores/{idPortador}/inadimplencias",
            doc_delinquencies,
            handler!(delinquencies),
        ),
        route(
            Method::POST,
            "/api/v1/portadores/{idPortador}/inadimplencias",
            doc_open,
            handler!(open_delinquency),
        ),
        route(
            Method::PATCH,
            "/api/v1/portadores/{idPortador}/inadimplencias/{idInadimplencia}",
            doc_update,
            handler!(update_delinquency),
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

fn delinquency_schema() -> Value {
    json!({"type": "object", "properties": {
        "id": {"type": "integer"}, "idConta": {"type": "integer"},
        "dataInicio": {"type": "string", "format": "date"}, "dataFim": {"type": "string", "nullable": true},
        "diasAtraso": {"type": "integer"}, "valor": {"type": "number"}, "detalhe": {"type": "string"},
        "aberta": {"type": "boolean"}}})
}

fn doc_delinquencies() -> Value {
    operation(
        "Lista o histórico de inadimplências do portador",
        &[path_id()],
        None,
        (
            "200",
            json!({"type": "array", "items": delinquency_schema()}),
        ),
    )
}

fn doc_open() -> Value {
    operation(
        "Registra uma inadimplência (sistema de cobrança do emissor)",
        &[path_id()],
        Some(
            json!({"type": "object", "required": ["dataInicio", "diasAtraso", "valor"], "properties": {
            "idConta": {"type": "integer"}, "dataInicio": {"type": "string", "format": "date"},
            "diasAtraso": {"type": "integer", "minimum": 1, "maximum": 3650}, "valor": {"type": "number"},
            "detalhe": {"type": "string", "maxLength": 200}}}),
        ),
        ("201", delinquency_schema()),
    )
}

fn doc_update() -> Value {
    operation(
        "Atualiza ou encerra uma inadimplência (sistema de cobrança do emissor)",
        &[
            path_id(),
            ("idInadimplencia", "path", true, "O id da inadimplência"),
        ],
        Some(json!({"type": "object", "properties": {
            "diasAtraso": {"type": "integer"}, "valor": {"type": "number"}, "dataFim": {"type": "string", "format": "date"}}})),
        ("200", delinquency_schema()),
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

fn delinquency_view(d: &crate::api::store::Delinquency) -> Value {
    json!({"id": d.id, "idConta": d.account_id, "dataInicio": Date::from_unix_ms(d.started_ms).to_string(),
        "dataFim": d.ended_ms.map(|e| Date::from_unix_ms(e).to_string()), "diasAtraso": d.days_late,
        "valor": Money::from_minor(d.amount).to_json(), "detalhe": d.detail, "aberta": d.ended_ms.is_none()})
}

async fn delinquencies(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let p = from_path(&ctx, &mut r).await?;
    let holder = match p.role {
        Role::Adicional { holder } => holder,
        Role::Titular => p.customer.id,
    };
    let rows = r.delinquencies(holder).await?;
    Reply::ok(Value::Array(rows.iter().map(delinquency_view).collect()))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DelinquencyReq {
    #[serde(default)]
    id_conta: Field<IdText>,
    #[serde(default)]
    data_inicio: Field<String>,
    #[serde(default)]
    data_fim: Field<String>,
    #[serde(default)]
    dias_atraso: Field<i64>,
    #[serde(default)]
    valor: Field<Value>,
    #[serde(default)]
    detalhe: Field<String>,
}

async fn open_delinquency(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: DelinquencyReq = input::body(&ctx.body, "um objeto")?;
    let today = today_date();
    let mut chk = Checks::new();
    let account = chk.id("idConta", &req.id_conta, false);
    let start = check_past_date(&mut chk, "dataInicio", &req.data_inicio, true, today);
    let days = chk.integer("diasAtraso", &req.dias_atraso, true, 1..=3650);
    let amount = if req.valor.is_given() {
        check_money(&mut chk, "valor", &req.valor)
    } else {
        chk.required("valor");
        None
    };
    if amount == Some(Money::ZERO) {
        chk.fail("valor", "out_of_range", "maior que zero");
    }
    let detail = chk
        .text("detalhe", &req.detalhe, false, Text::printable(200))
        .unwrap_or_default();
    if req.data_fim.is_given() {
        chk.fail(
            "dataFim",
            "not_allowed",
            "uma inadimplência é aberta sem dataFim; encerre-a com PATCH",
        );
    }
    chk.finish()?;
    let (Some(start), Some(days), Some(amount)) = (start, days, amount) else {
        return Err(ApiError::internal("a checked field is missing"));
    };
    let p = {
        let mut reader = ctx.reader().await?;
        from_path(&ctx, &mut reader.records()).await?
    };
    if !p.is_titular() {
        return Err(ApiError::unprocessable(
            "not_titular",
            "A inadimplência é da conta do titular.",
        ));
    }
    let account = match account {
        None => p.main_account(),
        Some(id) => p.accounts.iter().find(|a| a.id == id),
    }
    .map(|a| a.id)
    .ok_or_else(|| not_the_portadors("account_not_found", "conta", "idConta"))?;
    let customer = p.customer.id;
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            r.lock_customer(customer).await?;
            if r.delinquencies(customer)
                .await?
                .iter()
                .any(|d| d.account_id == account && d.ended_ms.is_none())
            {
                return Err(ApiError::conflict(
                    "delinquency_open",
                    "A conta já tem uma inadimplência aberta: atualize-a com PATCH.",
                )
                .field("idConta"));
            }
            let id = r
                .open_delinquency(
                    customer,
                    account,
                    start.days_since_epoch() * DAY_MS,
                    days,
                    amount.minor(),
                    &detail,
                )
                .await?;
            let row = r
                .delinquencies(customer)
                .await?
                .into_iter()
                .find(|d| d.id == id)
                .ok_or_else(|| ApiError::internal("a delinquency just written is missing"))?;
            r.record_occurrence(
                customer,
                "inadimplencia",
                &format!("idConta={account} diasAtraso={days}"),
            )
            .await?;
            Reply::created(delinquency_view(&row))
        })
    })
    .await
}

async fn update_delinquency(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: DelinquencyReq = input::body(&ctx.body, "um objeto")?;
    let today = today_date();
    let mut chk = Checks::new();
    let id = chk.id(
        "idInadimplencia",
        &Field::Value(IdText::Text(ctx.param("idInadimplencia")?.to_owned())),
        true,
    );
    let end = check_past_date(&mut chk, "dataFim", &req.data_fim, false, today);
    let days = chk.integer("diasAtraso", &req.dias_atraso, false, 1..=3650);
    let amount = if req.valor.is_given() {
        check_money(&mut chk, "valor", &req.valor)
    } else {
        None
    };
    for (k, given) in [
        ("idConta", req.id_conta.is_given()),
        ("dataInicio", req.data_inicio.is_given()),
        ("detalhe", req.detalhe.is_given()),
    ] {
        if given {
            chk.fail(k, "immutable", "não pode ser alterado");
        }
    }
    if end.is_none() && days.is_none() && amount.is_none() && chk.is_clean() {
        chk.fail(
            "dataFim",
            "required",
            "informe dataFim, diasAtraso ou valor",
        );
    }
    chk.finish()?;
    let id = id.ok_or_else(|| ApiError::internal("a checked id is missing"))?;
    let customer = {
        let mut reader = ctx.reader().await?;
        from_path(&ctx, &mut reader.records()).await?.customer.id
    };
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            r.lock_customer(customer).await?;
            let cur = r
                .delinquencies(customer)
                .await?
                .into_iter()
                .find(|d| d.id == id)
                .ok_or_else(|| {
                    not_the_portadors("delinquency_not_found", "inadimplência", "idInadimplencia")
                })?;
            if cur.ended_ms.is_some() {
                return Err(ApiError::conflict(
                    "delinquency_closed",
                    "Esta inadimplência já foi encerrada.",
                ));
            }
            let end_ms = end.map(|d| d.days_since_epoch() * DAY_MS);
            if end_ms.is_some_and(|e| e < cur.started_ms) {
                let mut chk = Checks::new();
                chk.fail(
                    "dataFim",
                    "before_start",
                    "não pode ser antes de dataInicio",
                );
                chk.finish()?;
            }
            r.update_delinquency(
                customer,
                id,
                days.unwrap_or(cur.days_late),
                amount.map_or(cur.amount, Money::minor),
                end_ms,
            )
            .await?;
            let row = r
                .delinquencies(customer)
                .await?
                .into_iter()
                .find(|d| d.id == id)
                .ok_or_else(|| ApiError::internal("a delinquency just written is missing"))?;
            if end_ms.is_some() {
                r.record_occurrence(
                    customer,
                    "inadimplencia_encerrada",
                    &format!("idInadimplencia={id}"),
                )
                .await?;
            }
            Reply::ok(delinquency_view(&row))
        })
    })
    .await
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
