//! The card's status: the processor's block code (block and unblock, the status before
//! the block kept) and the card status change.

use crate::api::domain::{BlockCode, CardStatus};
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::{card_at, org};
use crate::api::call::{ApiError, Ctx, Reply};
use crate::api::issuing::card_number;

pub(super) async fn block_code(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let card = card_at(&ctx, &mut r, "/cardNumber").await?;
    let code = ctx
        .at("/blockCode")
        .as_str()
        .unwrap_or("")
        .trim()
        .to_owned();
    let function = ctx.at("/functionCode").as_str().unwrap_or("");
    let updated = match function {
        "B" => {
            if code.len() != 1 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ApiError::unprocessable(
                    "invalid_block_code",
                    "blockCode: one letter or digit",
                )
                .field("/blockCode"));
            }
            if !matches!(
                card.status,
                CardStatus::Active | CardStatus::Inactive | CardStatus::Blocked
            ) {
                return Err(ApiError::unprocessable(
                    "card_status_final",
                    format!("the card is {}", card.status),
                )
                .field("/cardNumber"));
            }
            let block = BlockCode::parse(&code).map_err(|_| {
                ApiError::unprocessable("invalid_block_code", "blockCode: one letter or digit")
                    .field("/blockCode")
            })?;
            r.update_card(card.id, "block", |c| {
                if c.status != CardStatus::Blocked
                    && let Some(o) = c.body.as_object_mut()
                {
                    o.insert("statusBeforeBlock".into(), json!(c.status));
                }
                c.status = CardStatus::Blocked;
                c.block_code = Some(block);
            })
            .await?
        }
        "U" => {
            if card.status != CardStatus::Blocked {
                return Err(ApiError::unprocessable(
                    "card_not_blocked",
                    format!("the card is {}", card.status),
                )
                .field("/cardNumber"));
            }
            r.update_card(card.id, "unblock", |c| {
                let before = c
                    .body
                    .as_object_mut()
                    .and_then(|o| o.remove("statusBeforeBlock"));
                c.status = before
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(|s| CardStatus::parse(s).ok())
                    .filter(|s| matches!(s, CardStatus::Active | CardStatus::Inactive))
                    .unwrap_or(CardStatus::Active);
                c.block_code = None;
            })
            .await?
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_function_code",
                "functionCode: B (block) or U (unblock)",
            )
            .field("/functionCode"));
        }
    };
    let mut out = json!({
        "organizationNumber": org(&ctx),
        "cardNumber": card_number(&updated),
        "functionCode": function,
        "blockCode": if function == "B" { updated.block_code.map(|b| b.as_string()).unwrap_or_default() } else { code },
    });
    if let Some(seq) = ctx.at("/cardSequence").as_i64() {
        out["cardSequence"] = json!(seq);
    }
    Reply::ok(out)
}

pub(super) async fn card_status(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let card = card_at(&ctx, &mut r, "/cardNumber").await?;
    let wanted = match ctx.at("/cardStatus").as_i64() {
        Some(0) => CardStatus::Inactive,
        Some(1) => CardStatus::Active,
        Some(2) => CardStatus::Blocked,
        Some(3) => CardStatus::Cancelled,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_card_status",
                "cardStatus: 0 inactive, 1 active, 2 blocked, 3 cancelled",
            )
            .field("/cardStatus"));
        }
    };
    if !matches!(
        card.status,
        CardStatus::Active | CardStatus::Inactive | CardStatus::Blocked
    ) {
        return Err(ApiError::unprocessable(
            "card_status_final",
            format!("the card is {}", card.status),
        )
        .field("/cardNumber"));
    }
    if card.status == wanted {
        return Err(ApiError::unprocessable(
            "status_unchanged",
            "the card already has this status",
        )
        .field("/cardStatus"));
    }
    r.update_card(card.id, "status", |c| {
        c.status = wanted;
        if wanted != CardStatus::Blocked {
            c.block_code = None;
        }
    })
    .await?;
    Reply::ok(json!({ "successMessage": format!("card status updated to {wanted}") }))
}
