//! PINs: `PATCH /api/v1/portadores/{idPortador}/senha` (change, given the current PIN)
//! and `POST /api/v1/portadores/{idPortador}/senhas/sms` (delivery by SMS).
//!
//! Choices where the document is silent:
//! * Card: `idCartao` (a card of the portador, dependents' included), else the
//!   portador's own first live card.
//! * `PATCH .../senha` body `{"idCartao"?, "senhaAtual", "novaSenha", "keyAssociation"?}`:
//!   both PINs are ISO 9564 format 0 PIN blocks (16 hex characters) under the ZPK of
//!   `keyAssociation` (api.toml `[key_associations]`; absent: the first one by name).
//!   The daemon verifies the current PIN against the stored PVV and derives the new
//!   PVV and LMK-encrypted PIN, which replace the card's. Wrong current PIN:
//!   `422 senha_invalida`; tries exhausted: `422 senha_bloqueada`; a block that does not
//!   decipher to a valid PIN block: `422 bloco_senha_invalido`.
//! * `POST .../senhas/sms` body `{"idCartao"?, "idTelefone"?}`: the PIN goes to a phone
//!   confirmed for SMS (see `telefones`) as an ISO format 0 PIN block under the transport
//!   key of the first key association (`transport.example` in the example set), the SMS
//!   gateway's key; the facade never sees the PIN.
//! * A blocked card (status `blocked`, `lost`, `stolen`) or one whose PIN use the issuer
//!   blocked is refused (`422 cartao_bloqueado` / `senha_bloqueada`) before the daemon
//!   is asked, and the refusal is recorded as an occurrence. Changes, wrong PINs and
//!   deliveries are occurrences too (never with a PIN or block).

use crate::api::domain::{CardStatus, PinStatus};
use axum::http::Method;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::common::{Portador, from_path};
use super::referencias::{operation, path_id};
use super::telefones::{SmsGateway, gateway, sms_phone};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::issuing::{hsm_card, number_field};
use crate::api::store::{Card, Records};
use crate::client::{ClientError, PinChange, PinChangeRequest, PinDelivery, PinReference};
use crate::handler_tx;
use crate::protocol::{Status, Tag};

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::own(
            Method::PATCH,
            "/api/v1/portadores/{idPortador}/senha",
            doc_change,
            handler_tx!(change),
        ),
        Route::own(
            Method::POST,
            "/api/v1/portadores/{idPortador}/senhas/sms",
            doc_sms,
            handler_tx!(sms),
        ),
    ]
}

fn doc_change() -> Value {
    operation(
        "Altera a senha do portador usando a senha anterior",
        &[path_id()],
        Some(
            json!({"type": "object", "required": ["senhaAtual", "novaSenha"], "properties": {
                "idCartao": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                "senhaAtual": {"type": "string", "pattern": "^[0-9A-Fa-f]{16}$",
                    "description": "Current PIN, ISO 9564 format 0 block under the ZPK"},
                "novaSenha": {"type": "string", "pattern": "^[0-9A-Fa-f]{16}$",
                    "description": "New PIN, ISO 9564 format 0 block under the ZPK"},
                "keyAssociation": {"type": "string"}
            }}),
        ),
        (
            "200",
            json!({"type": "object", "properties": {"idCartao": {"type": "integer"},
                "status": {"type": "string", "enum": ["SENHA_ALTERADA"]}}}),
        ),
    )
}

fn doc_sms() -> Value {
    operation(
        "Envia a senha do portador via SMS",
        &[path_id()],
        Some(json!({"type": "object", "properties": {
            "idCartao": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            "idTelefone": {"oneOf": [{"type": "integer"}, {"type": "string"}]}
        }})),
        (
            "200",
            json!({"type": "object", "properties": {"idCartao": {"type": "integer"},
                "telefone": {"type": "string"}, "status": {"type": "string", "enum": ["ENVIADO"]}}}),
        ),
    )
}

fn invalid_body() -> ApiError {
    ApiError::unprocessable("invalid_body", "a JSON object is required")
}

/// The card the body names, or the portador's own first live card.
fn chosen_card(ctx: &Ctx, p: &Portador) -> Result<Card, ApiError> {
    let found = if ctx.at("/idCartao").is_null() {
        p.cards.iter().find(|c| {
            c.body.get("dependente").is_none()
                && !matches!(c.status, CardStatus::Replaced | CardStatus::Cancelled)
        })
    } else {
        let id = number_field(ctx.at("/idCartao"), "/idCartao")?;
        p.cards.iter().find(|c| c.id == id)
    };
    found.cloned().ok_or_else(|| {
        ApiError::unprocessable("cartao_nao_encontrado", "the portador has no such card")
            .field("/idCartao")
    })
}

/// Refuses a card that may not use its PIN, recording the refusal.
async fn refuse_blocked(
    r: &mut Records<'_>,
    p: &Portador,
    card: &Card,
    what: &str,
) -> Result<(), ApiError> {
    let (code, msg) = if matches!(
        card.status,
        CardStatus::Blocked | CardStatus::Lost | CardStatus::Stolen
    ) {
        ("cartao_bloqueado", "the card is blocked")
    } else if card.pin_status == PinStatus::Blocked {
        ("senha_bloqueada", "the card's PIN is blocked")
    } else if matches!(card.status, CardStatus::Replaced | CardStatus::Cancelled) {
        ("cartao_cancelado", "the card is no longer in use")
    } else {
        return Ok(());
    };
    r.record_occurrence(
        p.customer.id,
        &format!("{what}_recusada"),
        &format!(
            "idCartao={} motivo={code} bloqueio={}",
            card.id,
            card.block_code.map(|b| b.as_string()).unwrap_or_default()
        ),
    )
    .await?;
    // The refusal's occurrence is kept with the answer.
    Err(ApiError::unprocessable(code, msg)
        .field("/idCartao")
        .keeping_effects())
}

fn pin_block(ctx: &Ctx, field: &str) -> Result<Vec<u8>, ApiError> {
    let bad = || {
        ApiError::unprocessable(
            "bloco_senha_invalido",
            format!("{field}: 16 hex characters"),
        )
        .field(format!("/{field}"))
    };
    let text = ctx.at(&format!("/{field}")).as_str().ok_or_else(bad)?;
    if text.len() != 16 {
        return Err(bad());
    }
    hex::decode(text).map_err(|_| bad())
}

async fn change(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    if !ctx.body.is_object() {
        return Err(invalid_body());
    }
    let p = from_path(&ctx, &mut r).await?;
    let card = chosen_card(&ctx, &p)?;
    let old = pin_block(&ctx, "senhaAtual")?;
    let new = pin_block(&ctx, "novaSenha")?;
    let assoc = &ctx.app.config.key_associations;
    let keys = match ctx.at("/keyAssociation") {
        Value::Null => assoc.values().next(),
        Value::String(s) => assoc.get(s.as_str()),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::unprocessable("key_association_invalida", "unknown keyAssociation")
            .field("/keyAssociation")
    })?;
    refuse_blocked(&mut r, &p, &card, "senha").await?;
    let outcome = ctx
        .app
        .hsm
        .pin_change(&PinChangeRequest {
            card: hsm_card(&card),
            key: keys.pin_key.clone(),
            format: 0,
            pin_block: old,
            new_pin_block: new,
            pvk: ctx.app.config.keys.pvk.clone(),
            reference: PinReference::Pvv {
                pvv: card.pvv.clone(),
                pvki: 1,
            },
        })
        .await;
    let (customer, card_id) = (p.customer.id, card.id);
    let detail = format!("idCartao={card_id}");
    match outcome {
        Ok(PinChange::Changed(changed)) => {
            let (Some(pvv), Some(blob)) = (changed.str(Tag::Pvv), changed.bytes(Tag::PinBlob))
            else {
                return Err(ApiError::internal("pin.change answered without a PVV"));
            };
            r.update_card(card.id, "senha", |c| {
                c.pvv = pvv;
                c.pin_blob = hex::encode_upper(blob);
            })
            .await?;
            r.record_occurrence(customer, "senha_alterada", &detail)
                .await?;
            Reply::ok(json!({"idCartao": card.id, "status": "SENHA_ALTERADA"}))
        }
        Ok(PinChange::WrongPin) => {
            r.record_occurrence(customer, "senha_invalida", &detail)
                .await?;
            Err(
                ApiError::unprocessable("senha_invalida", "the current PIN is wrong")
                    .field("/senhaAtual")
                    .keeping_effects(),
            )
        }
        Ok(PinChange::Locked) => {
            r.record_occurrence(customer, "senha_bloqueada", &detail)
                .await?;
            Err(
                ApiError::unprocessable("senha_bloqueada", "the card's PIN tries are exhausted")
                    .field("/senhaAtual")
                    .keeping_effects(),
            )
        }
        Err(ClientError::Status {
            status: Status::InvalidPinBlock,
            ..
        }) => Err(ApiError::unprocessable(
            "bloco_senha_invalido",
            "a PIN block does not decipher to a valid format 0 block for this card",
        )
        .field("/senhaAtual")),
        Err(e) => Err(e.into()),
    }
}

async fn sms(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    if !(ctx.body.is_object() || ctx.body.is_null()) {
        return Err(invalid_body());
    }
    let p = from_path(&ctx, &mut r).await?;
    let card = chosen_card(&ctx, &p)?;
    let phone_id = match ctx.at("/idTelefone") {
        Value::Null => None,
        v => Some(number_field(v, "/idTelefone")?),
    };
    let phone = sms_phone(&mut r, p.customer.id, phone_id).await?;
    let transport = ctx
        .app
        .config
        .key_associations
        .values()
        .next()
        .map(|k| k.transport_key.clone())
        .ok_or_else(|| ApiError::internal("no key association configured for SMS delivery"))?;
    refuse_blocked(&mut r, &p, &card, "envio_senha").await?;
    let blob = hex::decode(&card.pin_blob)
        .map_err(|_| ApiError::internal("stored PIN blob is not hex"))?;
    let block = ctx
        .app
        .hsm
        .pin_deliver(
            &hsm_card(&card),
            &blob,
            &PinDelivery {
                key: transport,
                format: Some(0),
            },
        )
        .await?;
    gateway(&mut r).send(p.customer.id, &phone, &block).await?;
    r.record_occurrence(
        p.customer.id,
        "senha_enviada_sms",
        &format!("idCartao={}", card.id),
    )
    .await?;
    let shown: String = phone
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i >= 5 && i + 4 < phone.len() {
                '*'
            } else {
                c
            }
        })
        .collect();
    Reply::ok(json!({"idCartao": card.id, "telefone": shown, "status": "ENVIADO"}))
}
