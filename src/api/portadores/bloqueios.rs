//! Blocking a portador: `GET /api/v1/portadores/bloqueios/tipos`,
//! `POST /api/v1/portadores/bloqueios`, `POST /api/v1/portadores/desbloqueios`.
//!
//! Choices where the document is silent:
//! * Body: `{"idPortador", "idConta"?, "idCartao"?, "tipo", "observacao"?}` (ids as
//!   numbers or digit strings). `tipo` is a block type's `codigo` (`PERDA`) or `id` (1)
//!   from the table `portador_block_types` (seeded by migration 0007, editable). Unblock
//!   takes the same body without `tipo`.
//! * Without `idConta`/`idCartao` every card of the portador (its own and its
//!   dependents', which sit on its accounts) is blocked: status `blocked`, `block_code`
//!   = the type's code, each with a card history row. Replaced and cancelled cards are
//!   left alone. Unblocking restores `active` and clears the code; every type can be
//!   lifted (a lost card is normally replaced instead, which is a separate operation).
//! * A blocked card's PIN and CVV checks are refused by the facade and recorded as an
//!   occurrence ([`crate::api::store::Records::record_occurrence`]); blocks and unblocks
//!   are occurrences too.

use crate::api::domain::BlockCode;
use crate::api::domain::CardStatus;
use crate::api::store::Records;
use axum::http::Method;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::common::{Portador, load};
use super::referencias::{code_list, code_list_schema, operation};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::issuing::number_field;
use crate::api::store::Card;
use crate::handler_tx;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::own(
            Method::GET,
            "/api/v1/portadores/bloqueios/tipos",
            doc_types,
            handler_tx!(types),
        ),
        Route::own(
            Method::POST,
            "/api/v1/portadores/bloqueios",
            doc_block,
            handler_tx!(block),
        ),
        Route::own(
            Method::POST,
            "/api/v1/portadores/desbloqueios",
            doc_unblock,
            handler_tx!(unblock),
        ),
    ]
}

fn body_schema(with_type: bool) -> Value {
    let mut s = json!({"type": "object", "required": ["idPortador"], "properties": {
        "idPortador": {"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "The portador's id"},
        "idConta": {"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "Only the cards of this account"},
        "idCartao": {"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "Only this card"},
        "observacao": {"type": "string", "maxLength": 200}
    }});
    if with_type {
        s["required"] = json!(["idPortador", "tipo"]);
        s["properties"]["tipo"] = json!({"oneOf": [{"type": "integer"}, {"type": "string"}],
            "description": "Block type codigo or id (GET /api/v1/portadores/bloqueios/tipos)"});
    }
    s
}

fn result_schema() -> Value {
    json!({"type": "object", "properties": {
        "idPortador": {"type": "integer"},
        "tipo": {"type": "object", "nullable": true},
        "cartoes": {"type": "array", "items": {"type": "object", "properties": {
            "idCartao": {"type": "integer"}, "cartaoMascarado": {"type": "string"},
            "status": {"type": "string"}, "codigoBloqueio": {"type": "string"}}}}
    }})
}

fn doc_types() -> Value {
    operation(
        "Lista os tipos de bloqueio aplicados pelo emissor",
        &[],
        None,
        ("200", code_list_schema()),
    )
}

fn doc_block() -> Value {
    operation(
        "Bloqueia um portador",
        &[],
        Some(body_schema(true)),
        ("200", result_schema()),
    )
}

fn doc_unblock() -> Value {
    operation(
        "Desbloqueia um portador",
        &[],
        Some(body_schema(false)),
        ("200", result_schema()),
    )
}

async fn types(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    Reply::ok(code_list(&r.block_types().await?))
}

/// The portador of the body and the cards the body names.
async fn targets(ctx: &Ctx, r: &mut Records<'_>) -> Result<(Portador, Vec<Card>), ApiError> {
    if !ctx.body.is_object() {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "a JSON object is required",
        ));
    }
    let id = number_field(ctx.at("/idPortador"), "/idPortador")?;
    let p = load(r, id).await?;
    let mut cards: Vec<Card> = p
        .cards
        .iter()
        .filter(|c| !matches!(c.status, CardStatus::Replaced | CardStatus::Cancelled))
        .cloned()
        .collect();
    if !ctx.at("/idConta").is_null() {
        let account = number_field(ctx.at("/idConta"), "/idConta")?;
        if !p.accounts.iter().any(|a| a.id == account) {
            return Err(ApiError::unprocessable(
                "conta_nao_encontrada",
                "the portador has no such account",
            )
            .field("/idConta"));
        }
        cards.retain(|c| c.account_id == account);
    }
    if !ctx.at("/idCartao").is_null() {
        let card = number_field(ctx.at("/idCartao"), "/idCartao")?;
        if !p.cards.iter().any(|c| c.id == card) {
            return Err(ApiError::unprocessable(
                "cartao_nao_encontrado",
                "the portador has no such card",
            )
            .field("/idCartao"));
        }
        cards.retain(|c| c.id == card);
    }
    match ctx.at("/observacao") {
        Value::Null => {}
        Value::String(s) if s.chars().count() <= 200 => {}
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "observacao: a text of at most 200 characters",
            )
            .field("/observacao"));
        }
    }
    Ok((p, cards))
}

fn card_view(c: &Card) -> Value {
    json!({"idCartao": c.id, "cartaoMascarado": c.masked_pan, "status": c.status,
        "codigoBloqueio": c.block_code.map(|b| b.as_string()).unwrap_or_default()})
}

async fn block(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let (p, cards) = targets(&ctx, &mut r).await?;
    let types = r.block_types().await?;
    let kind = match ctx.at("/tipo") {
        Value::String(s) => types.iter().find(|t| t.code.eq_ignore_ascii_case(s.trim())),
        Value::Number(n) => n.as_i64().and_then(|n| types.iter().find(|t| t.id == n)),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::unprocessable("tipo_bloqueio_invalido", "unknown block type").field("/tipo")
    })?;
    if cards.is_empty() {
        return Err(ApiError::unprocessable(
            "sem_cartoes",
            "the portador has no card to block",
        ));
    }
    let mut out = Vec::new();
    for c in cards {
        let code = kind.code.clone();
        let updated = r
            .update_card(c.id, "bloqueio", |card| {
                card.status = CardStatus::Blocked;
                card.block_code = BlockCode::parse(&code).ok();
            })
            .await?;
        out.push(card_view(&updated));
    }
    let note = ctx.at("/observacao").as_str().unwrap_or("");
    r.record_occurrence(
        p.customer.id,
        "bloqueio",
        &format!("tipo={} cartoes={} {note}", kind.code, out.len()),
    )
    .await?;
    tracing::info!(portador = p.customer.id, tipo = %kind.code, "portador blocked");
    Reply::ok(json!({
        "idPortador": p.customer.id,
        "tipo": {"id": kind.id, "codigo": kind.code, "descricao": kind.description},
        "cartoes": out,
    }))
}

async fn unblock(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let (p, cards) = targets(&ctx, &mut r).await?;
    let blocked: Vec<Card> = cards
        .into_iter()
        .filter(|c| c.status == CardStatus::Blocked)
        .collect();
    if blocked.is_empty() {
        return Err(ApiError::unprocessable(
            "portador_nao_bloqueado",
            "no blocked card to unblock",
        ));
    }
    let mut out = Vec::new();
    for c in blocked {
        let updated = r
            .update_card(c.id, "desbloqueio", |card| {
                card.status = CardStatus::Active;
                card.block_code = None;
            })
            .await?;
        out.push(card_view(&updated));
    }
    let note = ctx.at("/observacao").as_str().unwrap_or("");
    r.record_occurrence(
        p.customer.id,
        "desbloqueio",
        &format!("cartoes={} {note}", out.len()),
    )
    .await?;
    Reply::ok(json!({"idPortador": p.customer.id, "tipo": Value::Null, "cartoes": out}))
}
