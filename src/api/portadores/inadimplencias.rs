//! Delinquencies: `GET /api/v1/portadores/{idPortador}/inadimplencias`, fed by the
//! issuer's billing system with `POST .../inadimplencias` and `PATCH
//! .../inadimplencias/{idInadimplencia}`.
//!
//! cofre keeps no billing; the billing system records a delinquency with `POST`
//! (`{idConta?, dataInicio, diasAtraso, valor, detalhe?}`: `dataInicio` a past date,
//! `diasAtraso` 1-3650, `valor` exact reais above 0; one open period per account, else
//! `409 delinquency_open`) and updates or closes it with `PATCH` (`{diasAtraso?,
//! valor?, dataFim?}`; a closed period is `409 delinquency_closed`). Open periods show in
//! the views (`estaEmAtraso`, `diasAtrasoTotal`, `estanoCobranca`, `devedorTotal`).
//! Any API client of the tenant may call these; give the billing system a client of
//! its own so that the history names it.

use axum::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{Role, from_path, not_the_portadors};
use super::input::{self, Checks, Field, IdText, Text};
use super::pessoa::{check_money, check_past_date};
use super::referencias::{operation, path_id, route};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::{Date, Money};
use crate::api::issuing::today_date;
use crate::handler;

const DAY_MS: i64 = 86_400_000;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
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
    ]
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
