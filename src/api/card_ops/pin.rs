//! The PIN at the daemon: invalid tries, validation (every refusal recorded), and the
//! issuer's PIN block and unblock.

use crate::api::domain::PinStatus;
use sqlx::AnyConnection;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use super::{card_at, key_association, rfc3339, usable};
use crate::api::call::{ApiError, Ctx, Reply};
use crate::api::domain::processor::{InvalidAttempts, PinStatusUpdate, PinValidation};
use crate::api::issuing::{card_number, hsm_card};
use crate::api::store::{Appends, Card};
use crate::client::{ClientError, PinReference, Verification};
use crate::protocol::{Status, Tag};

fn daemon_said(e: &ClientError) -> Option<Status> {
    match e {
        ClientError::Status { status, .. } => Some(*status),
        _ => None,
    }
}

pub(super) async fn invalid_attempts(ctx: Ctx, req: InvalidAttempts) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let card = card_at(
        &ctx,
        &mut reader.records(),
        &req.card_number,
        req.organization_number,
    )
    .await?;
    drop(reader);
    let r = ctx.app.hsm.pin_attempts(&hsm_card(&card)).await?;
    let attempts = r.u32(Tag::Attempts).unwrap_or(0);
    let limit = r.u32(Tag::Limit).unwrap_or(0);
    let locked = r.bool(Tag::Locked).unwrap_or(false);
    let blocked = locked || card.pin_status == PinStatus::Blocked;
    let mut area = json!({
        "cardNumber": card_number(&card),
        "cardInvalidPinTries": attempts,
        "maxNumberInvalidPinTries": limit,
        "blockedIndicator": if blocked { "B" } else { "N" },
    });
    if let Some(seq) = req.card_sequence_number {
        area["cardSequenceNumber"] = json!(seq);
    }
    if let Some(t) = r.u64(Tag::LastFailure).filter(|t| *t > 0) {
        let date = rfc3339(UNIX_EPOCH + Duration::from_secs(t));
        area["cardInvalidPinTryDate"] = json!(date.get(..10).unwrap_or(""));
    }
    Reply::ok(json!({ "outputArea": area }))
}

/// Records a refused PIN validation (a card history row and a cardholder occurrence)
/// in the call's transaction, and answers the refusal.
async fn refuse(
    ctx: &Ctx,
    channel: Option<&str>,
    card: &Card,
    err: ApiError,
) -> Result<Reply, ApiError> {
    let detail = json!({"code": err.code, "channel": channel});
    let (id, customer) = (card.id, card.customer_id);
    tracing::info!(card = id, code = err.code, "PIN validation refused");
    // Only rows appended: the read cache of cards and accounts, which every
    // validation reads, stays.
    ctx.commit_appends(move |mut r: Appends<'_>| {
        Box::pin(async move {
            r.card_event(id, "pin_refused", &detail).await?;
            // The cardholder's occurrences (GET /api/v1/portadores/{id}/ocorrencias)
            // show it too.
            r.record_occurrence(customer, "pin_refused", err.code)
                .await?;
            Err(err.keeping_effects())
        })
    })
    .await
}

pub(super) async fn pin_validation(ctx: Ctx, req: PinValidation) -> Result<Reply, ApiError> {
    let field = "/currentPinBlock";
    let mut reader = ctx.reader().await?;
    let card = card_at(
        &ctx,
        &mut reader.records(),
        &req.card_number,
        Some(req.organization_number),
    )
    .await?;
    drop(reader);
    let ka = key_association(&ctx, &req.key_association, "/keyAssociation")?;
    let channel = req.channel.as_deref();
    if let Err(e) = usable(&card) {
        return refuse(&ctx, channel, &card, e.field("/cardNumber")).await;
    }
    if card.pin_status == PinStatus::Blocked {
        let e = ApiError::unprocessable("card_blocked", "the card's PIN is blocked")
            .field("/cardNumber");
        return refuse(&ctx, channel, &card, e).await;
    }
    let block = match hex::decode(&req.current_pin_block) {
        Ok(b) if b.len() == 8 => b,
        _ => {
            let e = ApiError::unprocessable("invalid_pin_block", "currentPinBlock: 16 hex digits")
                .field(field);
            return refuse(&ctx, channel, &card, e).await;
        }
    };
    let outcome = ctx
        .app
        .hsm
        .pin_verify(
            &hsm_card(&card),
            &ka.pin_key,
            0,
            &block,
            &ctx.app.config.keys.pvk,
            &PinReference::Pvv {
                pvv: card.pvv.clone(),
                pvki: 1,
            },
        )
        .await;
    let refusal = match outcome {
        Ok(Verification::Verified { .. }) => {
            return Reply::ok(json!({ "cardNumber": card_number(&card) }));
        }
        Ok(Verification::Locked) => {
            ApiError::unprocessable("pin_locked", "exceeded number of invalid PIN tries")
        }
        Ok(_) => ApiError::unprocessable("invalid_pin", "incorrect PIN provided").field(field),
        Err(e) if daemon_said(&e) == Some(Status::InvalidPinBlock) => {
            ApiError::unprocessable("invalid_pin_block", "invalid current PIN block value")
                .field(field)
        }
        Err(e) if daemon_said(&e) == Some(Status::PinLocked) => {
            ApiError::unprocessable("pin_locked", "exceeded number of invalid PIN tries")
        }
        Err(e) => return Err(e.into()),
    };
    refuse(&ctx, channel, &card, refusal).await
}

pub(super) async fn pin_status(
    ctx: Ctx,
    req: PinStatusUpdate,
    db: &mut AnyConnection,
) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let card = card_at(&ctx, &mut r, &req.card_number, req.organization_number).await?;
    match req.service_function_code.as_str() {
        "B" => {
            r.update_card(card.id, "pin_block", |c| {
                c.pin_status = PinStatus::Blocked;
            })
            .await?;
        }
        "U" => {
            usable(&card).map_err(|e| e.field("/cardNumber"))?;
            ctx.app.hsm.pin_attempts_reset(&hsm_card(&card)).await?;
            r.update_card(card.id, "pin_unblock", |c| {
                c.pin_status = PinStatus::Active;
            })
            .await?;
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_service_function",
                "serviceFunctionCode: B (block PIN) or U (unblock PIN)",
            )
            .field("/serviceFunctionCode"));
        }
    }
    let mut out = json!({ "cardNumber": card_number(&card) });
    if let Some(seq) = req.card_sequence_number {
        out["cardSequenceNumber"] = json!(seq);
    }
    Reply::ok(out)
}
